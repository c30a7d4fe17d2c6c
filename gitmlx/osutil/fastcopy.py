"""Copying a file's bytes without passing them through Python.

Owns: the choice between a reflink (the file systems that share extents: btrfs, XFS,
bcachefs...), `copy_file_range(2)` (the kernel copies; on one file system no data crosses
into user space) and a plain read/write loop elsewhere.
Must not: hash or verify; callers decide whether the copy needs checking.
"""

from __future__ import annotations

import os
import shutil

from gitmlx.osutil import portable

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from typing import BinaryIO

#: Linux FICLONE ioctl: make `dst` share `src`'s extents.
_FICLONE = 0x40049409
_BLOCK = 1024 * 1024


def reflink(src: BinaryIO, dst: BinaryIO) -> bool:
    """Share the extents of `src` with the empty file `dst`; False where not supported."""
    try:
        return reflink_fd(src.fileno(), dst.fileno())
    except OSError:  # no descriptor (io.UnsupportedOperation)
        return False


#: Devices whose file system refused a reflink: not asked again (once per file otherwise).
_no_reflink: set[int] = set()


def reflink_fd(src: int, dst: int) -> bool:
    """Share the extents of file `src` with the empty file `dst`; False where not supported."""
    if portable.enabled():
        return False
    try:
        import fcntl
    except ImportError:
        return False
    device = os.fstat(dst).st_dev
    if device in _no_reflink:
        return False
    try:
        fcntl.ioctl(dst, _FICLONE, src)
        return True
    except OSError:
        _no_reflink.add(device)
        return False


def copy_range(src: BinaryIO, dst: BinaryIO, size: int) -> None:
    """Copy `size` bytes from the current position of `src` to `dst` with copy_file_range,
    or with a read/write loop where the kernel cannot (other platforms, some pairs of
    file systems)."""
    if portable.enabled():
        shutil.copyfileobj(src, dst, _BLOCK)  # to the end: callers pass what is left
        return
    left = size
    while left > 0:
        try:
            n = os.copy_file_range(src.fileno(), dst.fileno(), left)
        except (OSError, AttributeError):
            shutil.copyfileobj(src, dst, _BLOCK)
            return
        if n == 0:
            break
        left -= n


def copy_span(src_fd: int, offset: int, dst_fd: int, size: int) -> bool:
    """`size` bytes of `src_fd` from `offset` to the position of `dst_fd`, by the kernel;
    False (with nothing or part written: start over) where it cannot."""
    if portable.enabled():
        return False
    left = size
    try:
        while left > 0:
            n = os.copy_file_range(src_fd, dst_fd, left, offset + size - left)
            if n == 0:
                return False
            left -= n
    except (OSError, AttributeError):
        return False
    return True


def copy_file(src: BinaryIO, dst: BinaryIO, size: int) -> None:
    """`src` into the empty `dst`: by reflink where possible, else by kernel copy."""
    if not reflink(src, dst):
        copy_range(src, dst, size)
