"""Partial fetch: mlx.fetchinclude / mlx.fetchexclude and -I / -X decide what is
downloaded at clone, fetch and pull time; excluded files stay pointers with a clean status."""

from __future__ import annotations

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import write_random
from tests.support.repos import Repos, assert_clean_worktree, assert_content, clone, commit_all, local_store
from tests.support.stores import stored_oids


def publish(repos: Repos) -> dict[str, str]:
    shas = {
        "models/best.bin": write_random(repos.work / "models" / "best.bin", 300_000, "best"),
        "models/old.bin": write_random(repos.work / "models" / "old.bin", 200_000, "old"),
        "data/train.bin": write_random(repos.work / "data" / "train.bin", 400_000, "train"),
        "data/sub/eval.bin": write_random(repos.work / "data" / "sub" / "eval.bin", 100_000, "eval"),
    }
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    return shas


def is_pointer(path) -> bool:
    return path.stat().st_size < 1024 and path.read_bytes().startswith(b"version https://gitmlx.dev/spec/v1\n")


def test_clone_with_global_fetchexclude_skips_excluded_artifacts(repos: Repos, sealed) -> None:
    shas = publish(repos)
    git("config", "--global", "mlx.fetchexclude", "data/**", cwd=sealed.root)
    dest = sealed.root / "clone"

    assert_no_traceback(clone(repos.remote, dest))

    assert_content(dest, "models/best.bin", shas["models/best.bin"])
    assert_content(dest, "models/old.bin", shas["models/old.bin"])
    assert is_pointer(dest / "data" / "train.bin") and is_pointer(dest / "data" / "sub" / "eval.bin")
    assert_clean_worktree(dest)
    # Nothing was downloaded for the excluded files.
    assert stored_oids(local_store(dest)) == {shas["models/best.bin"], shas["models/old.bin"]}


def test_fetch_include_and_pull_exclude_choose_what_moves(repos: Repos, sealed) -> None:
    shas = publish(repos)
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})

    assert_no_traceback(mlx("fetch", "-I", "models/best.bin", cwd=dest))
    assert stored_oids(local_store(dest)) == {shas["models/best.bin"]}

    assert_no_traceback(mlx("pull", "-X", "data", cwd=dest))
    assert_content(dest, "models/old.bin", shas["models/old.bin"])
    assert is_pointer(dest / "data" / "train.bin")
    assert shas["data/train.bin"] not in stored_oids(local_store(dest))
    assert_clean_worktree(dest)

    git("config", "mlx.fetchinclude", "data/sub", cwd=dest)  # config applies when -I/-X are absent
    assert_no_traceback(mlx("pull", cwd=dest))
    assert_content(dest, "data/sub/eval.bin", shas["data/sub/eval.bin"])
    assert is_pointer(dest / "data" / "train.bin")
    assert_clean_worktree(dest)
