"""Thin checkouts (`mlx.thin`) against S3: the next version of a file in a thin work tree
downloads only what changed, counted at the server."""

from __future__ import annotations

import random

from tests.support.commands import assert_no_traceback, git
from tests.support.content import sha256_file, write_random
from tests.support.faultproxy import FaultProxy
from tests.support.repos import assert_clean_worktree, assert_content, commit_all, local_store
from tests.support.s3 import S3Setup, make_s3_repo
from tests.support.stores import stored_oids

MiB = 1024 * 1024


def test_thin_next_version_downloads_only_the_changed_chunks(s3: S3Setup, sealed) -> None:
    repos = make_s3_repo(sealed.root, s3.url(), s3.endpoint)
    write_random(repos.work / "model.bin", 24 * MiB, "v1")
    commit_all(repos.work, "v1")
    git("push", "-q", "origin", "main", cwd=repos.work)
    with FaultProxy(s3.host_port) as counter:  # no faults: it counts the bytes served
        env = {"AWS_ENDPOINT_URL_S3": counter.url}
        dest = sealed.root / "clone"
        assert_no_traceback(git("clone", "-q", "-c", "mlx.thin=true", repos.remote, dest, cwd=sealed.root, env=env))
        changed = MiB
        with open(repos.work / "model.bin", "r+b") as f:  # v2: one MiB rewritten in the middle
            f.seek(10 * MiB)
            f.write(random.Random(2).randbytes(changed))  # incompressible
        v2 = sha256_file(repos.work / "model.bin")
        commit_all(repos.work, "v2")
        git("push", "-q", "origin", "main", cwd=repos.work)
        before = counter.stats.received_bytes

        assert_no_traceback(git("pull", "-q", "--ff-only", cwd=dest, env=env))
        downloaded = counter.stats.received_bytes - before

    assert_content(dest, "model.bin", v2)
    assert_clean_worktree(dest)
    assert stored_oids(local_store(dest)) == set()
    print(f"\nthin v(n+1): {downloaded} bytes downloaded for {changed} bytes changed")
    assert downloaded <= 1.1 * changed + MiB, downloaded
