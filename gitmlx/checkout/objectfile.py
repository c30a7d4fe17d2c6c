"""One work-tree file made to hold a stored object, atomically and verified.

Owns: the temporary file beside the target (`.<name>.mlx-<pid>-<8 hex>`: same file
system, so the rename is atomic) and sweeping those that killed processes left; copying
the object in by reflink or kernel copy, checked against its oid (or, for an object this
process hashed moments ago, its size); the modification time placed files get; and
whether a process that left something behind still runs.
Must not: decide which files to place, fetch, print, or touch git's index.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import stat
import time
from pathlib import Path

from gitmlx.errors import IntegrityError, MlxError
from gitmlx.format.pointer import Pointer
from gitmlx.osutil import fastcopy, portable
from gitmlx.store.objects import BLOCK_SIZE, Store

_temp_numbers = itertools.count()

#: `.<name>.mlx-<pid>-<8 hex>`: a placement's temporary file (`.<name>.mlx-<12 hex>` before).
_TEMP_NAME = re.compile(r"\..+\.mlx-(?:(\d+)-[0-9a-f]{8}|[0-9a-f]{12})")


def _create_temp(target: str | Path, mode: int) -> tuple[str, int]:
    """A new file `.<name>.mlx-<pid>-<8 hex>` beside the target and its descriptor, open
    for writing. The hex counts up within a process; a name a dead process with the same
    pid left gets random hex instead."""
    folder, base = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    tmp = os.path.join(folder, f".{base}.mlx-{os.getpid()}-{next(_temp_numbers) & 0xFFFFFFFF:08x}")
    try:
        return tmp, os.open(tmp, flags, mode)
    except FileExistsError:
        tmp = os.path.join(folder, f".{base}.mlx-{os.getpid()}-{os.urandom(4).hex()}")
        return tmp, os.open(tmp, flags, mode)


def process_alive(pid: int) -> bool:
    """Whether `pid` runs. A zombie does not: a SIGKILLed hook whose parent died too can
    stay one for long where nobody reaps orphans (some containers' init), and its temp
    files and claims must not wait for that."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if portable.enabled():
        return True  # as with no procfs
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no procfs: trust kill(2)
    return state not in (b"Z", b"X")


def sweep_temps(directory: Path) -> None:
    """Remove the temp files interrupted placements left in `directory`.

    Only those whose writer is gone: a live gitmlx process placing a file keeps its own
    (its pid is in the name; names without one are from older versions).
    """
    try:
        names = [n for n in os.listdir(directory) if ".mlx-" in n]
    except OSError:
        return
    for name in names:
        match = _TEMP_NAME.fullmatch(name)
        if match is None or (match.group(1) and process_alive(int(match.group(1)))):
            continue
        try:
            os.unlink(directory / name)
        except OSError:
            pass


def check_inside(work_tree: Path, folder: str, name: str) -> None:
    """Refuse a folder that resolves (through symbolic links) outside the work tree."""
    root = os.path.realpath(work_tree)
    if os.path.commonpath([root, os.path.realpath(folder)]) != root:
        raise MlxError(f"'{name}' is outside the work tree")


def fill(store: Store, fd: int, pointer: Pointer, mode: int, verified: bool, name: str) -> None:
    """The object into the file `fd` (empty, or holding a pointer's text, which is
    overwritten and cut off), checked against its oid (or, when `verified`, its size),
    with permission bits `mode` and a modification time one second back."""
    _copy_object(store, pointer, fd, verified, name)
    st = os.fstat(fd)
    if st.st_size > pointer.size:  # what is left of the spare's earlier text
        os.ftruncate(fd, pointer.size)
        st = os.fstat(fd)
    if st.st_size != pointer.size:
        raise _corrupt(pointer, name)
    if stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)  # the umask took bits away
    _backdate(fd)


def write_object(
    store: Store, target: str | Path, pointer: Pointer, mode: int, verified: bool, name: str
) -> os.stat_result:
    """`target` atomically made to hold the object (`fill`); its stat data."""
    tmp, fd = _create_temp(target, mode)
    renamed = False
    try:
        fill(store, fd, pointer, mode, verified, name)
        os.replace(tmp, target)
        renamed = True
        return os.fstat(fd)  # after the rename: it changes the ctime
    finally:
        os.close(fd)
        if not renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def take(store: Store, pointer: Pointer, dest: str, mode: int) -> int | None:
    """Move `pointer`'s loose object out of the store to `dest` (same file system, by
    rename; whatever `dest` held goes), with permission bits `mode` and a modification time
    one second back; its descriptor. For a thin checkout (`mlx.thin`), and only for an
    object this process hashed while downloading it: the store keeps no copy, and the
    bytes are written once. None, the store untouched, when it cannot: packed, another
    owner's, linked elsewhere, the wrong size, or another file system."""
    src = str(store.path(pointer.oid))
    try:
        st = os.lstat(src)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid() or st.st_size != pointer.size:
        return None
    try:
        os.rename(src, dest)
    except OSError:
        return None
    fd = os.open(dest, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fchmod(fd, mode)
        _backdate(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def take_object(store: Store, target: str | Path, pointer: Pointer, mode: int) -> os.stat_result | None:
    """`target` atomically made to hold the object moved out of the store (`take`); its
    stat data, or None (nothing changed) when it cannot be moved."""
    tmp, fd = _create_temp(target, mode)  # a name nobody else uses, replaced by the rename
    os.close(fd)
    fd_or_none = take(store, pointer, tmp, mode)
    if fd_or_none is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        return None
    try:
        os.replace(tmp, target)
        return os.fstat(fd_or_none)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # the object is on the remote: fetched again when needed
        raise
    finally:
        os.close(fd_or_none)


def replace_with(target: Path, data: bytes) -> None:
    """Atomically make `target` hold `data` (a pointer), keeping its permission bits."""
    mode = stat.S_IMODE(os.lstat(target).st_mode)
    tmp, fd = _create_temp(target, mode)
    renamed = False
    try:
        with open(fd, "wb", closefd=False) as dst:
            dst.write(data)
        os.fchmod(fd, mode)
        os.replace(tmp, target)
        renamed = True
    finally:
        os.close(fd)
        if not renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _backdate(fd: int) -> None:
    """Give the new file a modification time one second in the past.

    git takes an index entry whose file is not older than the index itself for "racily
    clean" and re-reads the file through the clean filter at the next `git status`; a
    git built without USE_NSEC (Debian's and Ubuntu's) compares whole seconds, so every
    file placed in the second git then writes its index in was re-read once: a large
    checkpoint piped through the filter again. One second back makes the entry older
    than any index written after it. It keeps racy-git detection whole: an edit after
    the placement sets a newer time than the one recorded, which git sees as a change.
    """
    mtime = time.time_ns() - 1_000_000_000
    os.utime(fd, ns=(mtime, mtime))


def _corrupt(pointer: Pointer, name: str) -> IntegrityError:
    return IntegrityError(
        f"'{name}': local object {pointer.short_oid} is corrupt",
        "run 'git mlx fsck' and then 'git mlx pull'",
    )


def _copy_object(store: Store, pointer: Pointer, dst: int, verified: bool, name: str) -> None:
    """The object's bytes into the file `dst` from offset 0 (bytes it held beyond the
    object's size stay, for the caller to cut off): a loose object by reflink where the
    file system can (then hashed in the store, whose extents the copy shares, unless
    `verified`), else by kernel copy when `verified`, else read, hashed and written.
    IntegrityError when the bytes do not hash to the oid."""
    where = store.locate(pointer.oid)
    if isinstance(where, str):
        src_fd = os.open(where, os.O_RDONLY | os.O_CLOEXEC)
        offset, size = 0, os.fstat(src_fd).st_size
    else:
        src_fd, offset, size = where
    try:
        if size != pointer.size:
            raise _corrupt(pointer, name)
        if isinstance(where, str) and os.fstat(dst).st_size:
            os.ftruncate(dst, 0)  # a reflink's target must be empty (one large file: no cost)
        if isinstance(where, str) and fastcopy.reflink_fd(src_fd, dst):
            if not verified and _hash_range(src_fd, offset, size) != pointer.oid:
                raise _corrupt(pointer, name)
            return
        if not (verified and fastcopy.copy_span(src_fd, offset, dst, size)):
            os.lseek(dst, 0, os.SEEK_SET)  # over whatever a failed copy_span wrote
            if _hash_range(src_fd, offset, size, dst) != pointer.oid:
                raise _corrupt(pointer, name)
        store.copied_out(where)
    finally:
        if isinstance(where, str):
            os.close(src_fd)


def _hash_range(src: int, offset: int, size: int, dst: int | None = None) -> str:
    """SHA-256 of `size` bytes of `src` from `offset`, written on to `dst` if given."""
    digest = hashlib.sha256()
    done = 0
    while done < size:
        block = os.pread(src, min(BLOCK_SIZE, size - done), offset + done)
        if not block:
            break
        digest.update(block)
        if dst is not None:
            view = memoryview(block)
            while view:
                view = view[os.write(dst, view) :]
        done += len(block)
    return digest.hexdigest()
