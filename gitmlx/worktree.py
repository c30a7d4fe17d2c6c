"""Putting object content into the work tree outside a filter (`git mlx checkout`).

Owns: finding work-tree files that still hold their pointer text, replacing each with
its verified content atomically, and refreshing git's index so `git status` stays clean.
Must not: fetch (callers fetch first) or print.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from gitmlx.errors import IntegrityError, MlxError
from gitmlx.git.plumbing import run_git
from gitmlx.git.scan import TrackedFile
from gitmlx.statcache import StatCache
from gitmlx.store import BLOCK_SIZE, Store


@dataclass
class PlaceResult:
    placed: list[TrackedFile] = field(default_factory=list)
    missing: list[TrackedFile] = field(default_factory=list)
    failed: list[tuple[TrackedFile, str]] = field(default_factory=list)


def holds_pointer(work_tree: Path, tracked: TrackedFile) -> bool:
    """True when the work-tree file is exactly its pointer text (content not placed)."""
    path = work_tree / tracked.path
    try:
        if path.is_symlink() or path.stat().st_size >= 1024:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    return data == tracked.pointer.encode() or data == tracked.pointer.as_mlx().encode()


#: Linux FICLONE ioctl: share the store object's extents (btrfs, XFS, bcachefs...).
_FICLONE = 0x40049409


def _reflink(src: BinaryIO, dst: BinaryIO) -> bool:
    try:
        import fcntl

        fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
        return True
    except (OSError, ImportError):
        return False


def _copy_hashing(src: BinaryIO, dst: BinaryIO) -> str:
    digest = hashlib.sha256()
    while block := src.read(BLOCK_SIZE):
        digest.update(block)
        dst.write(block)
    return digest.hexdigest()


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()


def _copy_kernel(src: BinaryIO, dst: BinaryIO, size: int) -> None:
    """copy_file_range(2): the kernel copies, nothing passes through Python."""
    left = size
    while left > 0:
        try:
            n = os.copy_file_range(src.fileno(), dst.fileno(), left)
        except (OSError, AttributeError):
            shutil.copyfileobj(src, dst, BLOCK_SIZE)  # other file systems / platforms
            return
        if n == 0:
            break
        left -= n


def place(
    store: Store, work_tree: Path, tracked: TrackedFile, cache: StatCache | None = None, verified: bool = False
) -> None:
    """Replace the pointer file with the object's bytes: temp file, verify, rename.

    By reflink where the file system can (no data copied; the clone is then read once to
    verify it), else by copy while hashing. Never by hardlink: a user writing to the work
    tree file would write into the store. `verified` (this process hashed the object
    when it downloaded it, moments ago) skips the hash: the kernel copies, the size is
    checked. With `cache`, the result is recorded so the clean filter can recognise the
    untouched file without re-hashing it.
    """
    target = work_tree / tracked.path
    if not target.resolve().is_relative_to(work_tree.resolve()):
        raise MlxError(f"'{tracked.path}' is outside the work tree")
    tmp = target.with_name(f".{target.name}.mlx-{secrets.token_hex(6)}")
    try:
        with store.open(tracked.pointer.oid) as src, open(tmp, "xb") as dst:
            if verified:
                oid = tracked.pointer.oid
                if not _reflink(src, dst):
                    _copy_kernel(src, dst, tracked.pointer.size)
            else:
                oid = None if _reflink(src, dst) else _copy_hashing(src, dst)
        if oid is None:
            oid = _hash_file(tmp)
        if oid != tracked.pointer.oid or os.stat(tmp).st_size != tracked.pointer.size:
            raise IntegrityError(
                f"'{tracked.path}': local object {tracked.pointer.short_oid} is corrupt",
                "run 'git mlx fsck' and then 'git mlx pull'",
            )
        os.chmod(tmp, 0o755 if tracked.mode == "100755" else 0o644)
        os.replace(tmp, target)
        if cache is not None:
            cache.record(tracked.path, os.lstat(target), tracked.pointer.encode())
    finally:
        if tmp.exists():
            tmp.unlink()


def place_all(
    store: Store,
    work_tree: Path,
    files: Iterable[TrackedFile],
    cache: StatCache | None = None,
    verified: Container[str] = (),
) -> PlaceResult:
    result = PlaceResult()
    for tracked in files:
        if not store.has(tracked.pointer.oid):
            result.missing.append(tracked)
            continue
        try:
            place(store, work_tree, tracked, cache, tracked.pointer.oid in verified)
            result.placed.append(tracked)
        except (MlxError, OSError) as exc:
            result.failed.append((tracked, getattr(exc, "message", None) or str(exc)))
    return result


def refresh_index(work_tree: Path, paths: Iterable[str]) -> None:
    """Re-index the files we replaced, so `git status` stays clean.

    `update-index --refresh` alone is not enough: the index recorded the pointer file's
    size, and git takes a size change for a modification without reading the file
    (read-cache.c, `ie_modified`). Naming the paths makes git run the clean filter on
    each (one filter process for all), get the same pointer blob back and record the
    new stat data, as Git LFS does after `git lfs pull`.
    """
    data = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)
    if data:
        run_git(["update-index", "-q", "-z", "--stdin"], cwd=work_tree, input=data, check=False)
