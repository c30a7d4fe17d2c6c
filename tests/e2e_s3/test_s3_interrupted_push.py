"""A push stopped mid-upload (#21 item 14): SIGTERM stops it as Ctrl-C does, its multipart
uploads are aborted rather than left open (billed) on S3, and no worker goes on uploading
in the background; `gc --remote` aborts unfinished uploads older than its grace period
under the remote's prefix (a push killed with SIGKILL can abort nothing itself)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from tests.support.commands import git, mlx
from tests.support.content import MIB, write_random
from tests.support.repos import commit_all
from tests.support.s3 import S3Setup, make_s3_repo, open_multipart_uploads


def wait_for(condition, seconds: float, what: str) -> None:
    """Poll an observable condition (not a fixed sleep); fail with `what` past the deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigterm_mid_multipart_aborts_the_upload(s3: S3Setup, sealed) -> None:
    repos = make_s3_repo(sealed.root, s3.url(), s3.endpoint)
    write_random(repos.work / "big.bin", 300 * MIB, "big")  # a solo pack: 5 parts of 64 MiB
    commit_all(repos.work, "big")
    push = subprocess.Popen(
        ["git-mlx", "push", "origin"], cwd=repos.work, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for(lambda: open_multipart_uploads(s3.admin, s3.bucket), 120, "a multipart upload to start")
        push.send_signal(signal.SIGTERM)
        _, err = push.communicate(timeout=60)
    finally:
        if push.poll() is None:
            push.kill()
    assert push.returncode == 130, err.decode()
    assert b"Traceback" not in err
    assert open_multipart_uploads(s3.admin, s3.bucket) == []
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _is_child_of(int(p), push.pid)]


def _is_child_of(pid: int, parent: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1]) == parent
    except (OSError, ValueError, IndexError):
        return False


def test_gc_aborts_old_unfinished_uploads_under_its_prefix_only(s3: S3Setup, sealed) -> None:
    repos = make_s3_repo(sealed.root, s3.url(), s3.endpoint)
    write_random(repos.work / "a.bin", 1 * MIB, "a")
    commit_all(repos.work, "a")
    git("push", "-q", "origin", "main", cwd=repos.work)
    inside = s3.admin.create_multipart_upload(Bucket=s3.bucket, Key="team/models/packs/aa/stale.pack")
    outside = s3.admin.create_multipart_upload(Bucket=s3.bucket, Key="elsewhere/x")
    # moto reports every upload as initiated on 2010-11-10, so only "old" can be seen here:
    # the grace period's other side is not observable against it.
    swept = mlx("gc", "--remote", "--confirm", cwd=repos.work)
    assert "aborted 1 unfinished upload" in swept.stdout
    assert open_multipart_uploads(s3.admin, s3.bucket) == ["elsewhere/x"]  # not under the prefix
    assert inside["UploadId"] and outside["UploadId"]
