"""Acceptance 2: a large artifact, produced as a stream, pushes (objects of 64 MiB or more
by multipart upload) and clones back with the right sha256, while every git-mlx process
stays under 200 MiB RSS.

The size is a parameter: 300 MiB in the normal suite, 6 GiB (over S3's 5 GiB single-PUT
limit) under `-m slow`. gitmlx has no knob for its 64 MiB multipart threshold, and with
remote format 1 an artifact goes up as packs of at most 64 MiB, so the multipart check is
"every object of 64 MiB or more came from a multipart upload" (none may exist). Peak RSS
comes from a `git-mlx` shim first on PATH that runs the real one as its child: git starts
it for the filter (clean on add, smudge on clone) and the hook.
"""

from __future__ import annotations

import os

import pytest

from tests.support.commands import assert_no_traceback, git
from tests.support.content import GIB, MIB, sha256_file, write_random
from tests.support.probes import install_rss_shim, rss_reports
from tests.support.repos import assert_clean_worktree, assert_pointer, clone, remote_ref
from tests.support.s3 import S3Setup, assert_all_under_prefix, bucket_objects, make_s3_repo, open_multipart_uploads
from tests.support.sealed import BIN_DIR

LIMIT_KIB = 200 * 1024
MULTIPART_THRESHOLD = 64 * MIB


def peak_by_command(reports: list[dict]) -> dict[str, int]:
    peaks: dict[str, int] = {}
    for report in reports:
        name = report["argv"][0] if report["argv"] else "?"
        peaks[name] = max(peaks.get(name, 0), report["peak_kib"])
    return peaks


@pytest.mark.parametrize(
    "size",
    [
        pytest.param(300 * MIB, id="300MiB"),
        pytest.param(6 * GIB, id="6GiB", marks=pytest.mark.slow),
    ],
)
def test_large_streamed_artifact_pushes_and_clones_back_in_bounded_memory(
    size: int, s3: S3Setup, sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    reports = sealed.root / "rss-reports"
    install_rss_shim(sealed.root / "shim", BIN_DIR / "git-mlx", reports)
    monkeypatch.setenv("PATH", f"{sealed.root / 'shim'}{os.pathsep}{os.environ['PATH']}")

    repos = make_s3_repo(sealed.root, s3.url("team/models"), s3.endpoint)
    big = repos.work / "checkpoint.bin"
    sha = write_random(big, size, "checkpoint")  # streamed, as a producer writes it
    added = git("add", "checkpoint.bin", cwd=repos.work, timeout=1800)
    git("commit", "-q", "-m", "checkpoint", cwd=repos.work)
    assert assert_pointer(repos.work, "checkpoint.bin", spec="HEAD") == (sha, size)
    big.unlink()  # the clone must get it from S3; the local store keeps its copy
    pushed = git("push", "origin", "main", cwd=repos.work, timeout=3600)
    assert remote_ref(repos.remote) is not None

    objects = bucket_objects(s3.admin, s3.bucket)
    assert_all_under_prefix(objects, "team/models")
    # Whatever the layout cuts the artifact into, what is big goes up in parts: S3 takes at
    # most 5 GiB in one PUT, and gitmlx's multipart threshold is 64 MiB.
    single = [o for o in objects if o.size >= MULTIPART_THRESHOLD and not o.multipart]
    assert not single, f"objects of 64 MiB or more uploaded in one PUT: {single}"
    assert all(o.size <= 5 * GIB for o in objects)
    assert sum(o.size for o in objects) >= size  # random bytes do not shrink
    assert not open_multipart_uploads(s3.admin, s3.bucket)

    dest = sealed.root / "clone"
    cloned = clone(repos.remote, dest, check=True)
    assert_no_traceback(added, pushed, cloned)
    restored = dest / "checkpoint.bin"
    assert restored.stat().st_size == size
    assert sha256_file(restored) == sha
    assert_clean_worktree(dest)

    peaks = peak_by_command(rss_reports(reports))
    print(f"peak RSS (MiB) of git-mlx with a {size // MIB} MiB artifact:", {k: v // 1024 for k, v in peaks.items()})
    assert "pre-push" in peaks and "filter-process" in peaks, f"git-mlx was not measured: {peaks}"
    over = {name: f"{kib / 1024:.0f} MiB" for name, kib in peaks.items() if kib >= LIMIT_KIB}
    assert not over, f"git-mlx over 200 MiB RSS with a {size // MIB} MiB artifact: {over}"
    assert max(peaks.values()) > 5 * 1024, f"implausible peaks (KiB): {peaks}"
