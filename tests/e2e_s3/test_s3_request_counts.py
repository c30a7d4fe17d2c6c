"""Requests a push and a fresh clone of many small files make to S3, counted at a loopback
proxy in front of moto: with format 2 they grow with N / 1000 and the packs, not with N
(one shard of manifests per push instead of one key per object; one listing and one
shard read per clone instead of one manifest GET per object).
"""

from __future__ import annotations

import random

import pytest

from tests.support.commands import assert_no_traceback, git
from tests.support.faultproxy import FaultProxy
from tests.support.repos import assert_clean_worktree, clone, commit_all
from tests.support.s3 import S3Setup, make_s3_repo

KIB = 1024


def push_and_clone_counts(s3: S3Setup, sealed, files: int) -> tuple[int, int]:
    """(requests of the push, requests of a fresh clone) of `files` x 16 KiB new files."""
    repos = make_s3_repo(sealed.root, s3.url(), s3.endpoint)
    rng = random.Random(files)
    folder = repos.work / "data"
    folder.mkdir()
    for i in range(files):
        (folder / f"f{i:06d}.bin").write_bytes(rng.randbytes(16 * KIB))
    commit_all(repos.work, "many small files")
    with FaultProxy(s3.host_port) as counter:
        pushed = git("push", "-q", "origin", "main", cwd=repos.work, env={"AWS_ENDPOINT_URL_S3": counter.url})
    assert_no_traceback(pushed)
    push_requests = counter.stats.requests
    dest = sealed.root / "clone"
    with FaultProxy(s3.host_port) as counter:
        clone(repos.remote, dest, env={"AWS_ENDPOINT_URL_S3": counter.url})
    clone_requests = counter.stats.requests
    assert_clean_worktree(dest)
    for i in (0, files // 2, files - 1):
        name = f"data/f{i:06d}.bin"
        assert (dest / name).read_bytes() == (repos.work / name).read_bytes()
    return push_requests, clone_requests


def test_a_push_and_a_clone_of_2000_small_files_make_a_few_dozen_requests(s3: S3Setup, sealed) -> None:
    """The 200-for-20,000 bound, in proportion (20,000 files: the slow test below)."""
    push, fetched = push_and_clone_counts(s3, sealed, 2000)
    print(f"2,000 x 16 KiB: push {push} requests, clone {fetched} requests")
    assert push <= 40, f"push: {push} requests"
    assert fetched <= 40, f"clone: {fetched} requests"


@pytest.mark.slow
def test_a_push_and_a_clone_of_20000_small_files_make_at_most_200_requests_each(s3: S3Setup, sealed) -> None:
    push, fetched = push_and_clone_counts(s3, sealed, 20000)
    print(f"20,000 x 16 KiB: push {push} requests, clone {fetched} requests")
    assert push <= 200, f"push: {push} requests"
    assert fetched <= 200, f"clone: {fetched} requests"
