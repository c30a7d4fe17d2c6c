"""The first checkout of HEAD (a clone) downloads HEAD's small artifacts ahead of git's
requests instead of delaying each file; every other checkout delays as before, and the
fetch selection, sparse checkouts and other commits are respected either way."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git
from tests.support.content import write_random
from tests.support.formats import parse_pointer
from tests.support.repos import Repos, assert_clean_worktree, clone, commit_all
from tests.support.stores import has_local_object


def publish(repos: Repos, paths: list[str], size: int = 50_000) -> dict[str, str]:
    shas = {path: write_random(repos.work / path, size, path) for path in paths}
    commit_all(repos.work, "publish")
    git("push", "-q", "origin", "main", cwd=repos.work)
    return shas


def delayed_answers(trace: Path) -> int:
    """How many smudge requests the filter answered with status=delayed (GIT_TRACE_PACKET)."""
    return trace.read_text(errors="replace").count("status=delayed") if trace.exists() else 0


def assert_content(repo: Path, shas: dict[str, str]) -> None:
    for path, sha in shas.items():
        assert hashlib.sha256((repo / path).read_bytes()).hexdigest() == sha, path


#: mlx.directplace → (delayed answers in a clone, in a checkout of 3 files to download).
#: By default (1) gitmlx places every file and delays exactly one per checkout, so that git
#: ends the checkout with list_available_blobs; with 0 git writes the content, and only
#: downloads that are not fetched ahead are delayed.
DELAYS = {"1": (1, 1), "0": (0, 3)}


@pytest.mark.parametrize("direct", DELAYS)
def test_a_clone_fetches_ahead_and_delays_nothing(repos: Repos, sealed, direct: str) -> None:
    shas = publish(repos, [f"d{i % 3}/f{i:03d}.bin" for i in range(60)])
    dest, trace = sealed.root / "clone", sealed.tmp / "clone.packets"

    cloned = clone(repos.remote, dest, env={"GIT_TRACE_PACKET": str(trace), "GIT_MLX_DIRECT_PLACE": direct})

    assert_no_traceback(cloned)
    assert_content(dest, shas)
    assert_clean_worktree(dest)
    assert delayed_answers(trace) == DELAYS[direct][0]


@pytest.mark.parametrize("direct", DELAYS)
def test_a_checkout_of_another_commit_delays_as_before(repos: Repos, sealed, direct: str) -> None:
    first = publish(repos, ["a.bin", "b.bin"])
    dest = sealed.root / "clone"
    clone(repos.remote, dest)
    second = publish(repos, ["a.bin", "b.bin", "c.bin"], size=60_000)  # new versions
    git("fetch", "-q", "origin", cwd=dest)
    trace = sealed.tmp / "checkout.packets"
    env = {"GIT_TRACE_PACKET": str(trace), "GIT_MLX_DIRECT_PLACE": direct}

    switched = git("checkout", "-q", "origin/main", cwd=dest, env=env)

    assert_no_traceback(switched)
    assert_content(dest, second)
    assert_clean_worktree(dest)
    assert delayed_answers(trace) == DELAYS[direct][1]
    assert first.keys() <= second.keys()


def test_fetch_ahead_leaves_excluded_files_alone(repos: Repos, sealed) -> None:
    shas = publish(repos, ["keep/a.bin", "keep/b.bin", "skip/c.bin", "skip/d.bin"])
    dest = sealed.root / "clone"

    cloned = clone(repos.remote, dest, env={"GIT_MLX_FETCH_EXCLUDE": "skip/*"})

    assert_no_traceback(cloned)
    assert_content(dest, {p: s for p, s in shas.items() if p.startswith("keep/")})
    for path in ("skip/c.bin", "skip/d.bin"):
        assert parse_pointer((dest / path).read_bytes()) == (shas[path], 50_000)
        assert not has_local_object(dest, shas[path]), f"{path} was fetched though excluded"


def test_a_sparse_checkout_fetches_only_what_it_writes(repos: Repos, sealed) -> None:
    shas = publish(repos, ["in/a.bin", "in/b.bin", "out/c.bin", "out/d.bin"])
    dest = sealed.root / "clone"
    git("clone", "-q", "--no-checkout", repos.remote, dest, cwd=sealed.root)
    git("sparse-checkout", "set", "in", cwd=dest)

    checked_out = git("checkout", "-q", "main", cwd=dest)

    assert_no_traceback(checked_out)
    assert_content(dest, {p: s for p, s in shas.items() if p.startswith("in/")})
    assert not (dest / "out").exists()
    for path in ("out/c.bin", "out/d.bin"):
        assert not has_local_object(dest, shas[path]), f"{path} was fetched outside the sparse checkout"


def test_a_first_checkout_of_another_branch_gets_that_branch(repos: Repos, sealed) -> None:
    main = publish(repos, ["a.bin", "b.bin", "c.bin"])
    git("checkout", "-q", "-b", "other", cwd=repos.work)
    other = {p: write_random(repos.work / p, 70_000, f"other-{p}") for p in ("b.bin", "c.bin")}
    commit_all(repos.work, "other")
    git("push", "-q", "origin", "other", cwd=repos.work)
    dest = sealed.root / "clone"
    git("clone", "-q", "--no-checkout", repos.remote, dest, cwd=sealed.root)  # HEAD: main, no index

    checked_out = git("checkout", "-q", "other", cwd=dest)

    assert_no_traceback(checked_out)
    assert_content(dest, {"a.bin": main["a.bin"], **other})
    assert_clean_worktree(dest)
