"""GIT_MLX_PORTABLE=1 takes every fallback of a Linux-only call (as on macOS), and the
round trip still gives back every byte: push, clone, checkout of another commit, and a
skip-smudge clone restored by `git mlx pull`.

Where strace works, it proves the point: gitmlx's processes make none of those calls
with the switch, and make several of them without it (so the tracing can see them)."""

from __future__ import annotations

import collections
import os
import subprocess

import pytest

from tests.support.commands import git, mlx
from tests.support.content import write_random
from tests.support.repos import Repos, assert_clean_worktree, assert_content, clone, commit_all
from tests.support.syscalls import LINUX_ONLY, gitmlx_calls, strace_works

MIB = 1024 * 1024


def round_trip(repos: Repos, sealed, calls: collections.Counter[str]) -> None:
    """Push, clone, check out the older commit, skip-smudge clone + pull; each step run
    under strace where it works, its Linux-only calls added to `calls`."""
    step = 0

    def run(*args: str, cwd) -> None:
        nonlocal step
        step += 1
        if strace_works():
            calls.update(gitmlx_calls(args, cwd, os.environ, sealed.tmp / f"strace-{step}"))
        else:
            subprocess.run(args, cwd=cwd, check=True, capture_output=True)

    old = {"model.bin": write_random(repos.work / "model.bin", 1 * MIB, "v1"), "small.bin": ""}
    old["small.bin"] = write_random(repos.work / "small.bin", 300, "small")
    commit_all(repos.work, "v1")
    new = write_random(repos.work / "model.bin", 1 * MIB, "v2")
    commit_all(repos.work, "v2")
    run("git", "push", "-q", "origin", "main", cwd=repos.work)

    dest = sealed.root / "clone"
    run("git", "clone", "-q", str(repos.remote), str(dest), cwd=sealed.root)
    assert_content(dest, "model.bin", new)
    run("git", "checkout", "-q", "HEAD~1", cwd=dest)
    for name, sha in old.items():
        assert_content(dest, name, sha)
    assert_clean_worktree(dest)

    thin = sealed.root / "thin"
    clone(repos.remote, thin, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    run("git", "mlx", "pull", "-q", cwd=thin)
    assert_content(thin, "model.bin", new)
    assert_content(thin, "small.bin", old["small.bin"])
    assert_clean_worktree(thin)
    assert mlx("fsck", cwd=thin).returncode == 0


def test_portable_switch_takes_every_fallback_and_the_round_trip_holds(repos: Repos, sealed, monkeypatch) -> None:
    monkeypatch.setenv("GIT_MLX_PORTABLE", "1")
    calls: collections.Counter[str] = collections.Counter()
    round_trip(repos, sealed, calls)
    assert not calls, f"Linux-only calls made with GIT_MLX_PORTABLE=1: {dict(calls)}"


@pytest.mark.skipif(not strace_works(), reason="strace is missing or not allowed to trace here")
def test_without_the_switch_the_linux_calls_are_made_and_seen(repos: Repos, sealed) -> None:
    calls: collections.Counter[str] = collections.Counter()
    round_trip(repos, sealed, calls)
    seen = {name for name in LINUX_ONLY if calls[name]}
    assert {"renameat2", "copy_file_range", "ioctl", "openat"} <= seen, dict(calls)
    print(f"Linux-only calls without the switch: {dict(calls)}")
    git("status", cwd=repos.work)
