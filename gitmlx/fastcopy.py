"""Copying a file's bytes without passing them through Python.

Owns: the choice between a reflink (the file systems that share extents: btrfs, XFS,
bcachefs...), `copy_file_range(2)` (the kernel copies; on one file system no data crosses
into user space) and a plain read/write loop elsewhere.
Must not: hash or verify; callers decide whether the copy needs checking.
"""

from __future__ import annotations

import os
import shutil
from typing import BinaryIO

#: Linux FICLONE ioctl: make `dst` share `src`'s extents.
_FICLONE = 0x40049409
_BLOCK = 1024 * 1024


def reflink(src: BinaryIO, dst: BinaryIO) -> bool:
    """Share the extents of `src` with the empty file `dst`; False where not supported."""
    try:
        import fcntl

        fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
        return True
    except (OSError, ImportError):
        return False


def copy_range(src: BinaryIO, dst: BinaryIO, size: int) -> None:
    """Copy `size` bytes from the current position of `src` to `dst` with copy_file_range,
    or with a read/write loop where the kernel cannot (other platforms, some pairs of
    file systems)."""
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


def copy_file(src: BinaryIO, dst: BinaryIO, size: int) -> None:
    """`src` into the empty `dst`: by reflink where possible, else by kernel copy."""
    if not reflink(src, dst):
        copy_range(src, dst, size)
