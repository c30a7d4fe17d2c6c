"""Thousands of tracked files: one filter process per git command, not one per file."""

from __future__ import annotations

import hashlib
import random
import shutil

from tests.support.commands import assert_no_traceback, git
from tests.support.repos import (
    Repos,
    assert_clean_worktree,
    assert_no_big_blobs,
    clone,
    count_filter_starts,
    remote_oids,
    tracked_files,
)

COUNT = 2000
SIZE = 128 * 1024


def test_two_thousand_files_round_trip_with_one_filter_process_per_command(repos: Repos, sealed) -> None:
    rng = random.Random("many")
    expected = {}
    for i in range(COUNT):
        path = f"shard{i % 20:02d}/part-{i:04d}.bin"
        data = rng.randbytes(SIZE)
        (repos.work / path).parent.mkdir(exist_ok=True)
        (repos.work / path).write_bytes(data)
        expected[path] = hashlib.sha256(data).hexdigest()

    add_trace = sealed.tmp / "add.trace"
    add = git("add", "-A", cwd=repos.work, env={"GIT_TRACE": str(add_trace)})
    git("commit", "-q", "-m", "many", cwd=repos.work)
    push = git("push", "-q", "origin", "main", cwd=repos.work)
    assert remote_oids(repos.remote) == set(expected.values())

    dest = sealed.root / "clone"
    clone_trace = sealed.tmp / "clone.trace"
    cloned = clone(repos.remote, dest, env={"GIT_TRACE": str(clone_trace)})

    assert_no_traceback(add, push, cloned)
    assert count_filter_starts(add_trace) == {"filter-process": 1, "clean": 0, "smudge": 0}
    assert count_filter_starts(clone_trace) == {"filter-process": 1, "clean": 0, "smudge": 0}
    assert len([p for p in tracked_files(dest) if p.endswith(".bin")]) == COUNT
    for path, sha in expected.items():
        assert hashlib.sha256((dest / path).read_bytes()).hexdigest() == sha, path
    assert_clean_worktree(dest)
    assert_no_big_blobs(dest)
    for folder in (repos.work, repos.remote, dest):  # ~1.25 GiB in all; pytest keeps old tmp dirs
        shutil.rmtree(folder)
