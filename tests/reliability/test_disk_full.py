"""Disk full while smudging (a clone) or fetching: no partial file under a final name, in
the work tree or the store; the repository usable once space is freed; a clear error.

The clone lives on a 20 MiB tmpfs (we run as root in CI); where mounting is not allowed,
RLIMIT_FSIZE (with SIGXFSZ ignored, so a write fails with EFBIG instead of killing the
process) stands in for the full disk.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.commands import Result, git
from tests.support.content import write_random
from tests.support.integrity import check_store, classify, take_crash_logs
from tests.support.repos import commit_all, local_store, make_repo_with_bare_remote
from tests.support.stores import stored_oids

MIB = 1024 * 1024
SIZES = {"big.bin": 24 * MIB, "mid.bin": 2 * MIB, "small.bin": 1000}


@dataclass
class SmallDisk:
    root: Path  # where the repository under test lives
    mode: str  # "tmpfs" or "rlimit"
    full: bool = True

    def run(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
        limit = None
        if self.mode == "rlimit" and self.full:

            def limit() -> None:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (20 * MIB, 20 * MIB))

        proc = subprocess.run(
            list(args), cwd=cwd, capture_output=True, env={**os.environ, **(env or {})}, preexec_fn=limit, timeout=300
        )
        out, err = proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        return Result(tuple(args), proc.returncode, out, err)

    def free(self) -> None:
        """Make room: a bigger tmpfs, or no file size limit."""
        if self.mode == "tmpfs":
            subprocess.run(["mount", "-o", "remount,size=256m", str(self.root)], check=True)
        self.full = False


@pytest.fixture
def small_disk(sealed) -> Iterator[SmallDisk]:
    root = sealed.root / "small-disk"
    root.mkdir()
    if os.environ.get("GITMLX_TEST_DISK_FULL") != "rlimit":
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(root)], capture_output=True)
        if mounted.returncode == 0:
            yield SmallDisk(root, "tmpfs")
            subprocess.run(["umount", "-l", str(root)], capture_output=True)
            return
    yield SmallDisk(root, "rlimit")


def published(sealed) -> tuple[Path, dict[str, str]]:
    repos = make_repo_with_bare_remote(sealed.root)
    shas = {path: write_random(repos.work / path, size, path) for path, size in SIZES.items()}
    commit_all(repos.work, "artifacts")
    git("push", "-q", "origin", "main", cwd=repos.work)
    return repos.remote, shas


def assert_nothing_partial(dest: Path, shas: dict[str, str]) -> dict[str, str]:
    """Every file is its content, its pointer or absent; the store holds only whole objects."""
    states = {path: classify(dest / path, sha, SIZES[path]) for path, sha in shas.items()}
    assert "wrong" not in states.values(), states
    report = check_store(local_store(dest))
    assert not report.corrupt, report.corrupt
    assert not report.tmp_leftovers, "a failed write left its temporary file behind"
    partial = [p.name for p in dest.rglob(".*.mlx-*")]
    assert not partial, f"temporary work-tree files left: {partial}"
    return states


def clone_on_full_disk(sealed, disk: SmallDisk) -> tuple[Path, dict[str, str], Result]:
    bare, shas = published(sealed)
    dest = disk.root / "clone"
    cloned = disk.run("git", "clone", "-q", str(bare), str(dest), cwd=disk.root)
    return dest, shas, cloned


def test_disk_full_during_smudge_leaves_nothing_partial_and_the_repo_recovers(sealed, small_disk: SmallDisk) -> None:
    dest, shas, cloned = clone_on_full_disk(sealed, small_disk)
    take_crash_logs(sealed.tmp)  # judged by the next test

    assert "Traceback" not in cloned.output
    assert cloned.returncode != 0, "a clone that could not restore big.bin must not succeed"
    assert "'big.bin'" in cloned.stderr
    states = assert_nothing_partial(dest, shas)
    assert states["big.bin"] != "content"

    small_disk.free()
    restored = small_disk.run("git", "reset", "-q", "--hard", cwd=dest)  # if git aborted the checkout
    pulled = small_disk.run("git", "mlx", "pull", cwd=dest)

    assert "Traceback" not in restored.output + pulled.output
    assert restored.returncode == 0 and pulled.returncode == 0, f"{restored}\n{pulled}"
    for path, sha in shas.items():
        assert classify(dest / path, sha, SIZES[path]) == "content", path
    assert git("status", "--porcelain", cwd=dest).stdout == ""
    assert not take_crash_logs(sealed.tmp)


def test_disk_full_during_a_thin_clone_leaves_nothing_partial_and_the_repo_recovers(
    sealed, small_disk: SmallDisk
) -> None:
    bare, shas = published(sealed)
    dest = small_disk.root / "clone"
    cloned = small_disk.run("git", "clone", "-q", "-c", "mlx.thin=true", str(bare), str(dest), cwd=small_disk.root)

    assert "Traceback" not in cloned.output
    assert cloned.returncode != 0 and "'big.bin'" in cloned.stderr
    assert assert_nothing_partial(dest, shas)["big.bin"] != "content"

    small_disk.free()
    restored = small_disk.run("git", "reset", "-q", "--hard", cwd=dest)
    pulled = small_disk.run("git", "mlx", "pull", cwd=dest)

    assert restored.returncode == 0 and pulled.returncode == 0, f"{restored}\n{pulled}"
    for path, sha in shas.items():
        assert classify(dest / path, sha, SIZES[path]) == "content", path
    assert git("status", "--porcelain", cwd=dest).stdout == ""
    assert not set(shas.values()) & stored_oids(local_store(dest))  # thin: the work tree is the copy
    assert not take_crash_logs(sealed.tmp)


def test_disk_full_during_smudge_is_one_clear_error_naming_the_file_and_the_fix(sealed, small_disk: SmallDisk) -> None:
    dest, shas, cloned = clone_on_full_disk(sealed, small_disk)

    logs = take_crash_logs(sealed.tmp)
    assert not logs, "disk full is an expected failure, not a bug:\n" + logs[0]
    assert "internal error" not in cloned.stderr
    assert "'big.bin'" in cloned.stderr and "git mlx pull" in cloned.stderr
    assert classify(dest / "big.bin", shas["big.bin"], SIZES["big.bin"]) == "pointer"


def fetch_on_full_disk(sealed, disk: SmallDisk) -> tuple[Path, dict[str, str], Result]:
    bare, shas = published(sealed)
    dest = disk.root / "clone"
    disk.run("git", "clone", "-q", str(bare), str(dest), cwd=disk.root, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    fetched = disk.run("git", "mlx", "fetch", cwd=dest)
    return dest, shas, fetched


def test_disk_full_during_fetch_names_the_file_leaves_nothing_partial_and_recovers(
    sealed, small_disk: SmallDisk
) -> None:
    dest, shas, fetched = fetch_on_full_disk(sealed, small_disk)

    assert "Traceback" not in fetched.output
    assert not take_crash_logs(sealed.tmp)
    assert fetched.returncode == 1
    assert "'big.bin'" in fetched.stderr
    states = assert_nothing_partial(dest, shas)
    assert set(states.values()) == {"pointer"}, "fetch must not touch the work tree"
    assert shas["big.bin"] not in check_store(local_store(dest)).objects

    small_disk.free()
    again = small_disk.run("git", "mlx", "fetch", cwd=dest)

    assert again.returncode == 0, str(again)
    assert set(shas.values()) <= check_store(local_store(dest)).objects


def test_disk_full_during_fetch_says_where_space_is_needed(sealed, small_disk: SmallDisk) -> None:
    dest, _, fetched = fetch_on_full_disk(sealed, small_disk)

    assert "hint:" in fetched.stderr and str(local_store(dest)) in fetched.stderr, fetched.stderr
