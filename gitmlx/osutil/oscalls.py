"""Linux calls Python's os module lacks, made through ctypes, and whole positioned writes.

Owns: ctypes and the C library's `renameat2` (glibc 2.28+, musl 1.2.3+),
`sync_file_range` and glibc's `malloc_trim` and `mallopt`; writing buffers whole at an offset, many per
call (`pwrite_buffers`, over pwritev(2)).
Must not: fall back to other calls; callers decide what to do where a call is missing
(`can_exchange()` is False) or refused (OSError).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence

from gitmlx.osutil import portable

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from typing import Any

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_SYNC_FILE_RANGE_WRITE = 2


@functools.cache
def _libc() -> Any:
    """The C library through ctypes, or None (not Linux, no ctypes, GIT_MLX_PORTABLE)."""
    if not sys.platform.startswith("linux") or portable.enabled():
        return None
    try:
        import ctypes
    except ImportError:
        return None
    return ctypes.CDLL(None, use_errno=True)


@functools.cache
def _function(name: str, *argtypes: str) -> Any:
    """The C library's function `name` with argument types named from ctypes, or None."""
    libc = _libc()
    function = getattr(libc, name, None) if libc is not None else None
    if function is not None:
        import ctypes

        function.argtypes = [getattr(ctypes, t) for t in argtypes]
        function.restype = ctypes.c_int
    return function


def _renameat2() -> Any:
    return _function("renameat2", "c_int", "c_char_p", "c_int", "c_char_p", "c_uint")


def can_exchange() -> bool:
    """Whether this system has renameat2 at all (a file system may still refuse it)."""
    return _renameat2() is not None


def exchange(a: str, b: str) -> None:
    """Make name `a` refer to what `b` did and `b` to what `a` did, in one step: at no
    moment is either name missing or partly switched. Both must exist, on one file
    system. OSError as rename(2) gives it (EINVAL: the file system cannot exchange)."""
    function = _renameat2()
    if function is None:
        raise OSError(38, "renameat2 is not available here")  # ENOSYS
    if function(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        import ctypes

        number = ctypes.get_errno()
        raise OSError(number, f"cannot exchange '{a}' and '{b}': {os.strerror(number)}")


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing `length` dirty bytes of `fd` from `offset` to disk,
    without waiting (sync_file_range SYNC_FILE_RANGE_WRITE: no durability promise, no
    metadata). Does nothing where the call is missing or refused."""
    function = _function("sync_file_range", "c_int", "c_longlong", "c_longlong", "c_uint")
    if function is not None:
        function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def data_sync(fd: int) -> None:
    """fdatasync(2) where the system has it (not macOS), else fsync(2)."""
    sync = None if portable.enabled() else getattr(os, "fdatasync", None)
    (sync or os.fsync)(fd)


def give_back_free_memory() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim): after a large
    working set is let go (the manifest shards of a clone's downloads, read in worker
    threads, whose heaps the main thread never reuses), the process's resident size drops
    to what it still uses. Does nothing where the call is missing (musl, macOS)."""
    function = _function("malloc_trim", "c_size_t")
    if function is not None:
        function(0)


_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: Free memory the heap keeps for reuse (glibc's M_TRIM_THRESHOLD) with `keep_freed_memory`,
#: and the size from which one allocation gets a mapping of its own (M_MMAP_THRESHOLD).
KEEP_FREED = 64 * 1024 * 1024
OWN_MAPPING_FROM = 4 * 1024 * 1024


def keep_freed_memory() -> None:
    """Let the heap keep the memory it frees, up to KEEP_FREED, instead of giving it back
    at once (glibc's default when a buffer of 128 KiB or more is freed) only to fault
    fresh pages in for the next one. The filter makes and frees a buffer per file: 4,200
    brk calls for an add of 2,000 files of 128 KiB, each pair paying for fresh zeroed
    pages (bench/README.md, "Caveats"). The resident size never exceeds what was once in
    use; `give_back_free_memory` still returns it. Does nothing without glibc's mallopt
    (musl's ignores it)."""
    function = _function("mallopt", "c_int", "c_int")
    if function is not None:
        function(_M_TRIM_THRESHOLD, KEEP_FREED)
        function(_M_MMAP_THRESHOLD, OWN_MAPPING_FROM)


#: Buffers one pwritev(2) takes at most (Linux's and the BSDs' IOV_MAX).
IOV_MAX = 1024


def pwrite_buffers(fd: int, buffers: Sequence[bytes | memoryview], at: int) -> None:
    """`buffers` back to back from `at`: one pwritev(2) per IOV_MAX of them where there is
    `pwritev`; the rest of a short write one buffer at a time."""
    for first in range(0, len(buffers), IOV_MAX):
        part = buffers[first : first + IOV_MAX]
        done = os.pwritev(fd, part, at) if hasattr(os, "pwritev") else 0
        for buffer in part:
            size = len(buffer)
            if done < size:
                pwrite_all(fd, memoryview(buffer)[done:], at + done)
            done = max(done - size, 0)
            at += size


def pwrite_all(fd: int, data: bytes | memoryview, at: int) -> None:
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], at + done)
