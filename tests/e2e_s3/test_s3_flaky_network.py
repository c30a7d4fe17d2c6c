"""Acceptance 3: push and clone of 200 files through a network that drops ~10% of
connections mid-transfer and answers ~5% of requests with 503 SlowDown.

`mlx.s3.endpoint-url` (committed in `.mlxconfig`) points at a fault proxy in front of moto.
The proxy cuts a connection halfway through the request body when there is one (an
upload), else halfway through the response body (a download or a listing); 503s are
answered without reaching moto. Every byte must arrive intact, and the faults must really
have happened on both the push and the clone.

The 200-file test pins remote format 1, whose ~400 requests (a manifest each way per file)
meet faults at these rates on both the push and the clone; a format 2 push and clone make
a dozen requests each, so the format 2 test draws faults more often (still few enough that
8 attempts per request get through).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git
from tests.support.content import KIB, MIB
from tests.support.faultproxy import DroppingProxy
from tests.support.remote_layout import make_s3_format_1
from tests.support.repos import add_commit, assert_clean_worktree, assert_content, clone, remote_ref
from tests.support.s3 import S3Setup, assert_all_under_prefix, bucket_objects, make_s3_repo, open_multipart_uploads

CUT, SLOWDOWN = 0.10, 0.05


@pytest.fixture
def proxy(s3: S3Setup) -> Iterator[DroppingProxy]:
    with DroppingProxy(s3.host_port, cut_fraction=CUT, slowdown_fraction=SLOWDOWN, seed=20240501) as faulty:
        yield faulty


def two_hundred_sizes() -> dict[str, int]:
    """200 files: mostly 1-64 KiB, a few of 1-3 MiB (cut well inside their bodies), one empty."""
    rng = random.Random(7)
    sizes = {f"set/{i // 50}/file-{i:03d}.bin": rng.randint(1 * KIB, 64 * KIB) for i in range(192)}
    sizes |= {f"big/shard-{i}.bin": rng.randint(1 * MIB, 3 * MIB) for i in range(7)}
    sizes["set/empty.bin"] = 0
    assert len(sizes) == 200
    return sizes


def test_push_and_clone_of_200_files_survive_dropped_connections_and_503s(
    s3: S3Setup, proxy: DroppingProxy, sealed
) -> None:
    repos = make_s3_repo(sealed.root, s3.url("team/models"), proxy.url)
    make_s3_format_1(s3.admin, s3.bucket, "team/models")
    shas = add_commit(repos.work, two_hundred_sizes())

    pushed = git("push", "origin", "main", cwd=repos.work, timeout=300)
    push_stats, push_upload_cuts = (proxy.stats.slowdowns, proxy.stats.cuts), proxy.upload_cuts
    assert remote_ref(repos.remote) == git("rev-parse", "HEAD", cwd=repos.work).stdout.strip()
    assert push_stats[0] > 0 and push_upload_cuts > 0, f"the push met no faults: {proxy.stats}"

    _clone_restores(repos, sealed.root / "clone", pushed, shas)
    clone_slowdowns = proxy.stats.slowdowns - push_stats[0]
    clone_cuts = proxy.stats.cuts - push_stats[1]
    assert clone_slowdowns > 0 and clone_cuts > 0, f"the clone met no faults: {proxy.stats}"

    assert_all_under_prefix(bucket_objects(s3.admin, s3.bucket), "team/models")
    assert not open_multipart_uploads(s3.admin, s3.bucket)


def test_a_format_2_push_and_clone_of_200_files_survive_dropped_connections_and_503s(s3: S3Setup, sealed) -> None:
    with DroppingProxy(s3.host_port, cut_fraction=0.2, slowdown_fraction=0.15, seed=20261207) as proxy:
        repos = make_s3_repo(sealed.root, s3.url("team/models"), proxy.url)
        shas = add_commit(repos.work, two_hundred_sizes())
        pushed = git("push", "origin", "main", cwd=repos.work, timeout=300)
        assert remote_ref(repos.remote) == git("rev-parse", "HEAD", cwd=repos.work).stdout.strip()
        _clone_restores(repos, sealed.root / "clone", pushed, shas)
        assert proxy.stats.slowdowns > 0 and proxy.stats.cuts > 0, f"no faults met: {proxy.stats}"
    assert any(o.key.startswith("team/models/shards/") for o in bucket_objects(s3.admin, s3.bucket))
    assert not open_multipart_uploads(s3.admin, s3.bucket)


def _clone_restores(repos, dest: Path, pushed, shas: dict[str, str]) -> None:
    """A clone through the proxy restores every file pushed, and its work tree is clean."""
    cloned = clone(repos.remote, dest)
    assert_no_traceback(pushed, cloned)
    for path, sha in shas.items():
        assert_content(dest, path, sha)
    assert_clean_worktree(dest)
