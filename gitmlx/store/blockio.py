"""Block I/O for streaming object bytes through the store and into upload packs.

Owns: the block size used for streaming, writing a file on a worker thread
(`BackgroundWriter`), gathering small writes into reusable blocks (`BlockFiller`),
re-hashing a stream (`hashes_to`), letting the page cache drop pack ranges that were
copied out (`CopiedRanges`), flushing a file system (`sync_file_system`), and choosing a
temporary folder a rename can leave (`tmp_dir_beside`).
Must not: know object names or the store's layout, talk to a remote, run git, or print.
"""

from __future__ import annotations

import collections
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from gitmlx.osutil import oscalls, portable

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    import hashlib
    from typing import BinaryIO

#: Read and write size for streaming; large enough that per-call overhead vanishes.
BLOCK_SIZE = 1024 * 1024
#: Bytes of pack ranges copied out whose pages stay cached a little longer (`CopiedRanges`).
COPIED_LAG = 16 * 1024 * 1024
#: Copied ranges of one file at most this far apart (a pack's record header) are merged,
#: up to MERGE_LIMIT bytes: the pages leave with one call for many small objects.
MERGE_GAP = 4096
MERGE_LIMIT = 1024 * 1024


class BackgroundWriter:
    """A file written by a worker thread, so the caller's work and the disk writes
    overlap (hashing and writing both release the GIL). With `digest`, the worker also
    hashes each block (the caller then never touches the bytes again). Every 64 MiB the
    worker asks the kernel to write back what it has (fdatasync), so a final fsync only
    waits for the tail. At most a few blocks are queued: memory stays bounded.
    """

    SYNC_EVERY = 64 * 1024 * 1024

    def __init__(
        self,
        fd: int,
        digest: hashlib._Hash | None = None,  # type: ignore[name-defined]
        sync: bool = True,
        recycle: Callable[[bytearray], None] | None = None,
    ) -> None:
        import queue  # not at module level: only objects past one block start this thread
        import threading

        self._fd = fd
        self._sync = sync
        #: Given each bytearray block once written, so the producer can fill it again.
        self._recycle = recycle
        self._digest = digest
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=4)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="gitmlx-writer", daemon=True)
        self._thread.start()

    def write(self, block: bytes | memoryview | list[memoryview]) -> None:
        """Queue `block` (or several, in order, written with one writev(2)). The caller
        leaves the bytes alone until they are written (a bytearray comes back through
        `recycle`; what other buffers view must stay unchanged until `finish`)."""
        if self._error is not None:
            raise self._error
        self._queue.put(block)

    def _run(self) -> None:
        unsynced = 0
        while (block := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so the producer never blocks forever
            try:
                if isinstance(block, list):
                    unsynced += self._write_views(block)
                else:
                    unsynced += self._write_block(block)
                if self._sync and unsynced >= self.SYNC_EVERY:
                    oscalls.data_sync(self._fd)
                    unsynced = 0
            except OSError as exc:
                self._error = exc

    def _write_block(self, block: bytes | memoryview) -> int:
        if self._digest is not None:
            self._digest.update(block)
        view = memoryview(block)
        while view:
            view = view[os.write(self._fd, view) :]
        if self._recycle is not None and isinstance(block, bytearray):
            self._recycle(block)
        return len(block)

    def _write_views(self, views: list[memoryview]) -> int:
        """Hash and write `views` in order: one writev(2), then single writes for the rest
        of a short one. Returns the bytes written."""
        for view in views:
            if self._digest is not None:
                self._digest.update(view)
        written = total = os.writev(self._fd, views)
        for view in views:
            if written >= len(view):
                written -= len(view)
                continue
            rest = view[written:]
            while rest:
                rest = rest[os.write(self._fd, rest) :]
            total += len(view) - written
            written = 0
        return total

    def finish(self) -> None:
        """Wait for every queued block; raise the first write error."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class BlockFiller:
    """Copies writes once into blocks of `size` bytes and hands each full block to `emit`.

    A block goes on as it is (no second copy) and, once the writer thread has written
    it, comes back through `recycle` to be filled again: no fresh memory is faulted in
    per block, and a small file never allocates more than it holds.
    """

    def __init__(self, emit: Callable[[bytearray], None], size: int = 1024 * 1024) -> None:
        self._emit = emit
        self.size = size
        self._block = bytearray()
        self.fill = 0
        #: Blocks back from the writer thread (deque appends and pops are thread-safe).
        self._free: collections.deque[bytearray] = collections.deque()

    def recycle(self, block: bytearray) -> None:
        self._free.append(block)

    def write(self, view: memoryview) -> None:
        while view:
            n = min(len(view), self.size - self.fill)
            self._block[self.fill : self.fill + n] = view[:n]
            self.fill += n
            view = view[n:]
            if self.fill == self.size:
                self._emit(self._block)
                try:
                    self._block = self._free.popleft()
                except IndexError:
                    self._block = bytearray()
                self.fill = 0

    def take_tail(self) -> memoryview:
        """The partial last block (a view: write or copy it before the next `write`)."""
        tail = memoryview(self._block)[: self.fill]
        self.fill = 0
        return tail


def hashes_to(stream: BinaryIO, oid: str) -> bool:
    """Whether `stream`'s bytes hash to `oid` (sha256); closes the stream."""
    import hashlib  # not at module level: the filter's start waits for OpenSSL's load

    digest = hashlib.sha256()
    with stream:
        while block := stream.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest() == oid


class CopiedRanges:
    """Ranges of open files whose bytes were copied elsewhere, so their pages may leave the
    page cache once their writeback is surely done.

    Why: placing an object writes it twice, into the store and into the work tree, and the
    store's copy is seldom read again. Dropping its pages lets the kernel reuse them for the
    next files instead of growing the page cache by both copies, and writing into reused
    pages is cheaper than into pages the system has not handed out before. The last
    `COPIED_LAG` bytes are kept: their writeback may not be done yet (dirty pages are never
    dropped).
    """

    def __init__(self) -> None:
        self._ranges: collections.deque[tuple[int, int, int]] = collections.deque()
        self._bytes = 0

    def add(self, fd: int, offset: int, size: int) -> None:
        if not hasattr(os, "posix_fadvise") or portable.enabled():
            return
        last = self._ranges[-1] if self._ranges else None
        if last is not None and last[0] == fd and 0 <= offset - last[1] - last[2] <= MERGE_GAP:
            # The next object of the same pack (a record header away): one range, so
            # that a checkout of many small files makes one call per MiB, not per file.
            merged = offset + size - last[1]
            if merged <= MERGE_LIMIT:
                self._ranges[-1] = (fd, last[1], merged)
                self._bytes += merged - last[2]
                self._drop_old()
                return
        self._ranges.append((fd, offset, size))
        self._bytes += size
        self._drop_old()

    def _drop_old(self) -> None:
        while self._bytes > COPIED_LAG:
            fd, offset, size = self._ranges.popleft()
            self._bytes -= size
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, offset, size, os.POSIX_FADV_DONTNEED)


def sync_file_system(folder: Path) -> None:
    """Flush every written file of the file system holding `folder` (syncfs(2)), or of all
    file systems where syncfs is missing: one call instead of an fsync per file."""
    try:
        import ctypes

        if portable.enabled():
            raise AttributeError("syncfs")  # as where the C library lacks it
        fd = os.open(folder, os.O_RDONLY)
        try:
            if ctypes.CDLL(None, use_errno=True).syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def tmp_dir_beside(folder: Path, tmp_dir: Path) -> Path:
    """Where to write files that are then renamed into `folder`: `tmp_dir`, or `folder/tmp`
    when `folder` is on another file system (a symlink the user made), since rename(2)
    cannot cross file systems (EXDEV). Creates the folders."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    if os.stat(tmp_dir).st_dev == os.stat(folder).st_dev:
        return tmp_dir
    own = folder / "tmp"
    own.mkdir(exist_ok=True)
    return own
