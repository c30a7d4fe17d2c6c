"""One upload pack being written: the bytes of new chunks, hashed as they are written.

Owns: where a pack's bytes go between the chunking thread and the file (1 MiB blocks
filled by copying; views of mapped store packs handed over without a copy), the pack id
(format 2: its table id, format/pack_id.py; format 1: the sha256 of its bytes), and the
store maps those views come from (`StoreMaps`).
Must not: decide what goes into a pack, name packs on the remote, or know the store.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from pathlib import Path

from gitmlx.format.pack_id import TableId
from gitmlx.store.blockio import BackgroundWriter, BlockFiller

TYPE_CHECKING = False  # NewChunk for the type checker only: packer.py imports this module
if TYPE_CHECKING:
    from gitmlx.transfer.packer import NewChunk


class PackWriter:
    """One pack being filled in a temporary file (where: `Packer._pack_path`). A worker
    thread writes it (blockio.BackgroundWriter), so chunking the object and writing the
    pack overlap. Chunks are copied once, into 1 MiB blocks the worker hands back once
    written; stored objects taken as they are (`append_mapped`) are not copied at all: the
    worker writes them from the store's mapped file.

    `by_table` (format 2): the pack is named by its table id, made of each chunk's stored
    hash as it is appended, so no byte is hashed here. Else (format 1) the worker hashes
    every byte it writes: a second pass over the pack (bench/README.md, "Pack ids")."""

    BLOCK = 1024 * 1024
    #: Mapped views are handed to the worker in batches of this many bytes (or VIEWS_MAX
    #: views), one writev(2) each: a hand-off per 16 KiB object would cost more than its bytes.
    VIEWS_BATCH = 1024 * 1024
    VIEWS_MAX = 256

    def __init__(self, path: Path, seq: int, by_table: bool) -> None:
        self.path = path
        self.seq = seq
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._table = TableId() if by_table else None
        self._hash = None if by_table else hashlib.sha256()
        self._blocks = BlockFiller(lambda block: self._writer.write(block), self.BLOCK)
        self._writer = BackgroundWriter(self._fd, self._hash, recycle=self._blocks.recycle)
        self.size = 0
        #: The chunks written into this pack, in order.
        self.chunks: list[NewChunk] = []
        #: Views not handed to the worker yet: older than anything in `_blocks`.
        self._views: list[memoryview] = []
        self._viewed = 0

    def append(self, payload: bytes | memoryview, stored_hash: bytes) -> int:
        """Append a stored chunk whose bytes hash to `stored_hash` (pack_id.stored_hash);
        its offset in the pack."""
        offset = self.size
        view = memoryview(payload).cast("B")
        if self._table is not None:
            self._table.add(stored_hash, len(view))
        self._send_views()
        self.size += len(view)
        self._blocks.write(view)
        return offset

    def append_mapped(self, view: memoryview, stored_hash: bytes) -> int:
        """Append bytes that stay unchanged until `seal` (a stored object in its mapped
        store pack), without copying them."""
        offset = self.size
        if self._table is not None:
            self._table.add(stored_hash, len(view))
        tail = self._blocks.take_tail()
        if tail:
            self._views.append(memoryview(bytes(tail)))  # then the block is filled again
            self._viewed += len(tail)
        self._views.append(view)
        self._viewed += len(view)
        self.size += len(view)
        if self._viewed >= self.VIEWS_BATCH or len(self._views) >= self.VIEWS_MAX:
            self._send_views()
        return offset

    def _send_views(self) -> None:
        if self._views:
            self._writer.write(self._views)
            self._views, self._viewed = [], 0

    def seal(self) -> str:
        """Finish writing; the pack id."""
        try:
            self._send_views()
            tail = self._blocks.take_tail()
            if tail:
                self._writer.write(bytes(tail))
            self._writer.finish()
        finally:
            os.close(self._fd)
        return (self._table or self._hash).hexdigest()  # type: ignore[union-attr]


class StoreMaps:
    """Store packs mapped read-only, one map per descriptor, for `PackWriter.append_mapped`.

    Store packs are never changed in place (rewrites make new files), so a view stays
    valid while its map lives. Every MAPPED_RSS bytes handed out, every mapped page leaves
    this process's page tables (madvise DONTNEED on the whole map: the pages stay in the
    page cache, and a later read maps them again; safe while a writer reads): the pages
    a push reads would otherwise count in its RSS, 400 MiB for 100,000 objects of 4 KiB.
    Whole maps, not just the span handed out: the writers read each view after it was
    handed out, and would map its pages again for good."""

    MAPPED_RSS = 4 * 1024 * 1024

    def __init__(self) -> None:
        self._maps: dict[int, mmap.mmap] = {}
        self._lock = threading.Lock()
        self._handed = 0  # bytes handed out since the pages were last dropped

    def view(self, fd: int, offset: int, size: int) -> memoryview | None:
        """`size` bytes of file `fd` from `offset`; None when the file cannot be mapped,
        or is shorter than that as mapped (a store pack still growing: read it)."""
        with self._lock:
            found = self._maps.get(fd)
            if found is None:
                try:
                    found = self._maps[fd] = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
                except (OSError, ValueError):
                    return None
            if offset + size > len(found):
                return None
            self._handed += size
            if self._handed >= self.MAPPED_RSS:
                self._drop_pages()
        return memoryview(found)[offset : offset + size]

    def _drop_pages(self) -> None:
        """(The caller holds the lock.)"""
        advice = getattr(mmap, "MADV_DONTNEED", None)
        for found in self._maps.values() if advice is not None else ():
            try:
                found.madvise(advice)
            except OSError:
                pass
        self._handed = 0

    def close(self) -> None:
        """Close every map; one a view still holds (an error path) is left to the collector."""
        with self._lock:
            for found in self._maps.values():
                try:
                    found.close()
                except BufferError:
                    pass
            self._maps.clear()
