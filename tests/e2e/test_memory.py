"""Guarantee 5: the filters stream, so their memory does not grow with the file.

The filter process is started through a small wrapper (`filter.mlx.process` for this one
git command) that runs the real `git-mlx filter-process` as its child and records the
child's peak RSS (getrusage RUSAGE_CHILDREN: the largest waited-for descendant).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git
from tests.support.content import sha256_file, write_random
from tests.support.repos import Repos, assert_pointer, local_store
from tests.support.stores import assert_local_object

MIB = 1024 * 1024
LIMIT_KIB = 100 * 1024

WRAPPER = """\
import resource, subprocess, sys
status = subprocess.call(["git-mlx", "filter-process"])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if sys.platform == "darwin":
    peak //= 1024  # bytes there, KiB on Linux
with open(sys.argv[1], "w") as f:
    f.write(str(peak))
sys.exit(status)
"""


def git_measuring_filter_rss_kib(repo: Path, tmp: Path, *args: str) -> int:
    """Run `git ARGS` with the filter process wrapped; return the filter's peak RSS in KiB."""
    wrapper = tmp / "measure_filter.py"
    wrapper.write_text(WRAPPER)
    report = tmp / "peak-rss-kib"
    report.unlink(missing_ok=True)
    command = f"'{sys.executable}' '{wrapper}' '{report}'"
    result = git("-c", f"filter.mlx.process={command}", *args, cwd=repo)
    assert_no_traceback(result)
    peak = int(report.read_text())
    assert peak > 5 * 1024, f"implausible peak RSS {peak} KiB: was the filter measured at all?"
    return peak


def check_filters_stay_small(repos: Repos, tmp: Path, size: int) -> None:
    big = repos.work / "big.bin"
    sha = write_random(big, size, "big")
    try:
        clean_peak = git_measuring_filter_rss_kib(repos.work, tmp, "add", "big.bin")
        assert assert_pointer(repos.work, "big.bin", spec="") == (sha, size)
        assert_local_object(repos.work, sha, size)
        assert clean_peak < LIMIT_KIB, f"clean peaked at {clean_peak / 1024:.1f} MiB on {size // MIB} MiB"

        big.unlink()
        smudge_peak = git_measuring_filter_rss_kib(repos.work, tmp, "checkout", "--", "big.bin")
        assert sha256_file(big) == sha
        assert smudge_peak < LIMIT_KIB, f"smudge peaked at {smudge_peak / 1024:.1f} MiB on {size // MIB} MiB"
    finally:
        big.unlink(missing_ok=True)
        shutil.rmtree(local_store(repos.work), ignore_errors=True)


def test_git_add_and_checkout_of_200_mib_keep_the_filter_under_100_mib_rss(repos: Repos, sealed) -> None:
    check_filters_stay_small(repos, sealed.tmp, 200 * MIB)


@pytest.mark.slow
def test_git_add_and_checkout_of_1_gib_keep_the_filter_under_100_mib_rss(repos: Repos, sealed) -> None:
    check_filters_stay_small(repos, sealed.tmp, 1024 * MIB)
