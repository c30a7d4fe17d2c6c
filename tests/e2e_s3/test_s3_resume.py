"""A push killed half-way resumes (#21, "resume across runs"; acceptance 6): the next push
sends at most the half that was not on S3 yet, plus one part per upload thread, counted
at the server side of a counting proxy in front of moto.

Two shapes of upload are resumed in two ways. An object of 8 MiB to 4 GiB goes up as one
multipart upload (a solo pack): its journal under the local store (`uploads/`) lets the
next push continue the same S3 upload, reusing the parts ListParts confirms. A bigger
object goes up as packs of up to 64 MiB: each finished pack is written to the chunk index
at once, so the next push names those packs instead of sending their chunks again.
The default suite runs the first with 5 MiB parts (`GIT_MLX_S3_PART_SIZE`); `-m slow` runs
the 6 GiB case of the acceptance."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.support.commands import assert_no_traceback, git
from tests.support.content import GIB, MIB, sha256_file, write_random
from tests.support.faultproxy import FaultProxy
from tests.support.s3 import S3Setup, make_s3_repo, open_multipart_uploads

THREADS = 4  # S3Remote.transfer_threads: parts in flight per upload
PACK_STREAMS = 4  # Packer: packs uploading at once (concurrency 8 // 2)


def wait_for(condition, seconds: float, what: str) -> None:
    """Poll an observable condition (not a fixed sleep); fail with `what` past the deadline."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def kill_push_at(work, proxy: FaultProxy, fraction: float, size: int, timeout: float) -> None:
    """Start `git mlx push`, SIGKILL its whole process group once `fraction` of `size`
    reached the server."""
    push = subprocess.Popen(
        ["git-mlx", "push", "origin"],
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: proxy.stats.sent_bytes >= fraction * size or push.poll() is not None, timeout, "the push")
        assert push.poll() is None, "the push ended before it could be killed"
    finally:
        os.killpg(push.pid, signal.SIGKILL)
        push.wait()


@pytest.mark.parametrize(
    ("size", "part"),
    [
        pytest.param(96 * MIB, 5 * MIB, id="96MiB-multipart"),
        pytest.param(6 * GIB, 64 * MIB, id="6GiB-packs", marks=pytest.mark.slow),
    ],
)
def test_a_killed_push_resumes_where_it_stopped(
    size: int, part: int, s3: S3Setup, sealed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("GIT_MLX_S3_PART_SIZE", str(part))
    with FaultProxy(s3.host_port) as proxy:
        repos = make_s3_repo(sealed.root, s3.url(), proxy.url)
        sha = write_random(repos.work / "big.bin", size, "resume")
        git("add", "big.bin", cwd=repos.work, timeout=1800)
        git("commit", "-q", "-m", "big", cwd=repos.work)
        kill_push_at(repos.work, proxy, 0.5, size, timeout=1800)
        first = proxy.stats.sent_bytes

        proxy.stats.sent_bytes = 0
        pushed = git("push", "origin", "main", cwd=repos.work, timeout=3600)
        second = proxy.stats.sent_bytes
        dest = sealed.root / "clone"
        cloned = git("clone", "-q", repos.remote, dest, cwd=sealed.root, timeout=3600)  # through the proxy
    assert_no_traceback(pushed, cloned)
    assert sha256_file(dest / "big.bin") == sha
    # One part per stream: a part in flight per upload thread, or a pack per pack upload.
    bound = 0.55 * size + (THREADS * part if size <= 4 * GIB else PACK_STREAMS * 64 * MIB)
    with capsys.disabled():
        print(f"\nresume {size} B: the killed push sent {first} B, the next {second} B (bound {bound:.0f})")
    assert second <= bound, f"the second push sent {second} of {size} bytes"
    assert second >= size - first  # what was not on S3 had to be sent
    assert open_multipart_uploads(s3.admin, s3.bucket) == []
    assert not list((repos.work / ".git" / "mlx" / "uploads").glob("*.jsonl"))


def test_a_killed_fetch_resumes_from_what_it_verified(s3: S3Setup, sealed) -> None:
    """A download of a large object killed half-way leaves `partial-<oid>` in the store's
    tmp/; the next fetch keeps its chunks that verify and asks only for the rest: at most
    what the first run had not received, plus one ranged read (32 MiB) and the manifest."""
    size = 96 * MIB
    with FaultProxy(s3.host_port) as proxy:
        repos = make_s3_repo(sealed.root, s3.url(), proxy.url)
        sha = write_random(repos.work / "big.bin", size, "fetch-resume")
        git("add", "big.bin", cwd=repos.work)
        git("commit", "-q", "-m", "big", cwd=repos.work)
        git("push", "-q", "origin", "main", cwd=repos.work)
        dest = sealed.root / "clone"
        git("clone", "-q", repos.remote, dest, cwd=sealed.root, env={"GIT_MLX_SKIP_SMUDGE": "1"})

        proxy.stats.received_bytes = 0
        fetch = subprocess.Popen(
            ["git-mlx", "fetch"], cwd=dest, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_for(lambda: proxy.stats.received_bytes >= size // 2 or fetch.poll() is not None, 600, "the fetch")
            assert fetch.poll() is None, "the fetch ended before it could be killed"
        finally:
            os.killpg(fetch.pid, signal.SIGKILL)
            fetch.wait()
        first = proxy.stats.received_bytes
        assert list((dest / ".git" / "mlx" / "tmp").glob("partial-*"))

        proxy.stats.received_bytes = 0
        fetched = git("mlx", "fetch", cwd=dest)
        second = proxy.stats.received_bytes
        pulled = git("mlx", "pull", cwd=dest)
    assert_no_traceback(fetched, pulled)
    assert sha256_file(dest / "big.bin") == sha
    bound = size - first + 33 * MIB
    print(f"\nfetch resume {size} B: the killed fetch received {first} B, the next {second} B (bound {bound})")
    assert second <= bound
    assert not list((dest / ".git" / "mlx" / "tmp").glob("partial-*"))
