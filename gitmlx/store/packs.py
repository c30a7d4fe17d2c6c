"""Store packs: many small objects in one file of the local store.

Owns: the store-pack file format (docs/local-store.md, "Store packs"), appending small
objects to a pack being written, finding and reading objects in finished packs, and
rewriting packs without some objects.
Must not: hash object bytes (the store verifies before it appends), talk to a remote, run
git, or print.

Why: a loose object costs a file and often two directories, and creating an inode can
cost more than writing a small object's bytes, so `git add` or a clone of thousands of
small files was bound by inode creation, not bytes. A pack is one file per batch (a
`git add`, a clone, a fetch).

A finished pack is immutable and appears under its final name by one rename after its
index is written (and fsynced when it holds the only copy of some object): a reader sees
a whole pack or none. Rewriting (prune, quarantine, merging many packs) writes a new pack
and then deletes the old ones; readers keep an open descriptor and so never lose an object
mid-read.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import mmap
import os
import struct
from _thread import allocate_lock  # threading's Lock: `threading` itself is not on the filter's start
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from gitmlx.osutil import digests, oscalls

#: A pending pack starts writing back its bytes every this many (`PendingPack.add`).
WRITEBACK_STEP = 8 * 1024 * 1024

MAGIC = b"MLXSPACK"
VERSION = 1
HEADER = struct.Struct(">8sII")  # magic, version, reserved (0)
ENTRY = struct.Struct(">32sQQ")  # raw oid, offset of the object's bytes, size
_KEY_PREFIX = struct.Struct(f">Q{ENTRY.size - 8}x")  # an entry's first 8 bytes, as one integer
TRAILER = struct.Struct(">QQ32s8s")  # index offset, entry count, sha256(index), magic
RECORD = struct.Struct(">32sQ")  # before each object's bytes: raw oid, size (for recovery)
#: A finished pack builds its array of oid prefixes (`PackFile._load_keys`) at this many finds.
KEYS_AFTER = 64
#: Name prefix of a store pack being written in tmp/ (push's upload packs use `pack-`).
ORPHAN_PREFIX = "spack-"
TRAILER_MAGIC = b"MLXSIDX1"
SUFFIX = ".mlxpack"


class PackFormatError(ValueError):
    """A file in `packs/` that is not a whole, well-formed store pack."""


def _close_once(pack: PackFile | PendingPack) -> None:  # both classes' __del__ too
    """Close a pack's descriptor unless done already (or its constructor failed first)."""
    if getattr(pack, "_fd_open", False):
        pack._fd_open = False
        with contextlib.suppress(OSError):
            os.close(pack.fd)


class PackFile:
    """A finished pack, opened once: its index is memory-mapped and searched by bisection."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY)
        try:
            self.file_size = os.fstat(self.fd).st_size
            self._index_offset, self.count, self.index_digest = _read_trailer(self.fd, self.file_size)
            self._map: mmap.mmap | None = None
            self._keys: array[int] | None = None  # built once KEYS_AFTER lookups were made
            self._finds = 0
            self._base = 0
            if self.count:
                length = self.count * ENTRY.size
                # mmap needs a page-aligned offset: map from the page that holds the index.
                start = self._index_offset - self._index_offset % mmap.ALLOCATIONGRANULARITY
                self._map = mmap.mmap(
                    self.fd, self._index_offset + length - start, offset=start, access=mmap.ACCESS_READ
                )
                self._base = self._index_offset - start
        except BaseException:
            os.close(self.fd)
            raise
        #: Until `close`, or `__del__` once nothing holds the pack (its readers do): a store
        #: dropped unclosed (an API caller's) must not keep its descriptors.
        self._fd_open = True

    def find(self, oid: str) -> tuple[int, int] | None:
        """(offset, size) of `oid`'s bytes in this pack, or None.

        From its KEYS_AFTER-th lookup on, bisects an array of the entries' first 8 bytes (C
        code, 8 bytes an entry), then compares whole oids among the entries sharing that
        prefix: a checkout or a push looks up every file's object a few times, and a
        bisection in Python cost ~6 µs a lookup. Before, it bisects the mapped index, so
        a filter's few lookups never read every entry."""
        if not self.count:
            return None
        key = bytes.fromhex(oid)
        keys = self._keys
        if keys is None:
            self._finds += 1
            if self._finds >= KEYS_AFTER:
                keys = self._load_keys()
        if keys is None:
            return self._bisect_map(key)
        prefix = int.from_bytes(key[:8], "big")
        i = bisect.bisect_left(keys, prefix)
        while i < self.count and keys[i] == prefix:
            at = self._base + i * ENTRY.size
            if self._map[at : at + 32] == key:  # type: ignore[index]
                _, offset, size = ENTRY.unpack_from(self._map, at)  # type: ignore[arg-type]
                return offset, size
            i += 1
        return None

    def _bisect_map(self, key: bytes) -> tuple[int, int] | None:
        """`find` before the prefix array pays for itself."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            at = self._base + mid * ENTRY.size
            here = self._map[at : at + 32]  # type: ignore[index]
            if here < key:
                lo = mid + 1
            elif here > key:
                hi = mid
            else:
                _, offset, size = ENTRY.unpack_from(self._map, at)  # type: ignore[arg-type]
                return offset, size
        return None

    def _load_keys(self) -> array[int]:
        """The first 8 bytes of every entry's oid, as integers in index (oid) order."""
        assert self._map is not None
        table = memoryview(self._map)[self._base : self._base + self.count * ENTRY.size]
        try:
            keys = array("Q", (k for (k,) in _KEY_PREFIX.iter_unpack(table)))
        finally:
            table.release()
        self._keys = keys  # two threads may both build it: the same array either way
        return keys

    def entries(self) -> Iterator[tuple[str, int, int]]:
        """(oid, offset, size) for every object, in oid order."""
        for i in range(self.count):
            raw, offset, size = ENTRY.unpack_from(self._map, self._base + i * ENTRY.size)  # type: ignore[arg-type]
            yield raw.hex(), offset, size

    def index_intact(self) -> bool:
        """Whether the index still hashes to the digest in the trailer (fsck)."""
        import hashlib  # not at module level: the filter's start waits for OpenSSL's load

        data = self._map[self._base : self._base + self.count * ENTRY.size] if self._map is not None else b""
        return hashlib.sha256(data).digest() == self.index_digest

    def reader(self, offset: int, size: int) -> PackedObjectReader:
        return PackedObjectReader(self.fd, offset, size, self)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        _close_once(self)

    __del__ = _close_once


def _read_trailer(fd: int, file_size: int) -> tuple[int, int, bytes]:
    if file_size < HEADER.size + TRAILER.size:
        raise PackFormatError("too short")
    magic, version, _ = HEADER.unpack(os.pread(fd, HEADER.size, 0))
    if magic != MAGIC or version != VERSION:
        raise PackFormatError("not a store pack")
    index_offset, count, digest, end = TRAILER.unpack(os.pread(fd, TRAILER.size, file_size - TRAILER.size))
    if end != TRAILER_MAGIC or index_offset + count * ENTRY.size + TRAILER.size != file_size:
        raise PackFormatError("bad trailer")
    return index_offset, count, digest


class PackedObjectReader(io.RawIOBase):
    """A read-only, seekable stream over one object's bytes inside a pack.

    It has no `fileno()`: the descriptor is the whole pack's, so code that would hand it
    to the kernel (reflink, copy_file_range) falls back to reading, as it must; a ranged
    kernel copy gets the pack's descriptor and offset from `Store.locate` instead.
    """

    def __init__(self, fd: int, offset: int, size: int, pack: object) -> None:
        super().__init__()
        self._fd, self._start, self._size, self._pos = fd, offset, size, 0
        self._pack = pack  # the pack owning `fd`, kept alive (and its descriptor open) while this reads

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._pos
        n = left if n is None or n < 0 else min(n, left)
        if n <= 0:
            return b""
        data = os.pread(self._fd, n, self._start + self._pos)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def fileno(self) -> int:
        raise io.UnsupportedOperation("an object inside a store pack has no file of its own")


class PendingPack:
    """A pack being appended to by this process (thread-safe); `finish` names it.

    Until then its objects are visible to this process only (through `find` and `reader`).
    """

    def __init__(self, tmp_dir: Path) -> None:
        # Created under a name recovery ignores, locked, then renamed: a `pack-*` file in
        # tmp/ is always locked while its writer lives (the lock is on the inode).
        token = f"{os.getpid()}-{os.urandom(8).hex()}"
        start = tmp_dir / f".new-spack-{token}"
        self.fd = os.open(start, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        _try_lock(self.fd, blocking=True)
        self.tmp_path = tmp_dir / f"{ORPHAN_PREFIX}{token}"
        os.replace(start, self.tmp_path)
        os.write(self.fd, HEADER.pack(MAGIC, VERSION, 0))
        self.end = HEADER.size
        self.entries: dict[str, tuple[int, int]] = {}
        #: Whether some object in it is the only copy (made from the user's file): fsync.
        self.durable = False
        self._lock = allocate_lock()
        self._closed = False
        #: Where the last `start_writeback` ended.
        self._written_back = 0
        self._fd_open = True  # until finish or abort, else as PackFile's

    def add(self, oid: str, data: bytes | bytearray | memoryview, durable: bool) -> bool:
        """Append a record: its header (oid, size), then the object's bytes. False (nothing
        written) once `close_for_adds` was called: the caller adds it to the next pack."""
        return self.add_many([(oid, data)], durable)

    def add_many(self, objects: Sequence[tuple[str, bytes | bytearray | memoryview]], durable: bool) -> bool:
        """`add` for several objects, written with one system call for up to 512 of them
        (a clone of many small files stores a block's objects at once: one call per object
        cost its thread a wait for the interpreter lock at each return). An object in the
        pack already, or twice in `objects`, is written once. False, nothing written, once
        `close_for_adds` was called. The objects are found only once all are written."""
        with self._lock:
            if self._closed:
                return False
            buffers: list[bytes | memoryview] = []
            placed: dict[str, tuple[int, int]] = {}
            end = self.end
            for oid, data in objects:
                if oid in self.entries or oid in placed:
                    continue
                view = memoryview(data).cast("B")
                buffers += (RECORD.pack(bytes.fromhex(oid), len(view)), view)
                placed[oid] = (end + RECORD.size, len(view))
                end += RECORD.size + len(view)
            oscalls.pwrite_buffers(self.fd, buffers, self.end)
            self.end = end
            self.entries.update(placed)
            if self.end - self._written_back >= WRITEBACK_STEP:
                # Write back as we go: the pages can then leave the page cache once their
                # objects are placed (Store.copied_out), and a final fsync has less to do.
                oscalls.start_writeback(self.fd, self._written_back, self.end - self._written_back)
                self._written_back = self.end
            self.durable = self.durable or durable
            return True

    def close_for_adds(self) -> None:
        """From now on `add` refuses (waits for one in progress): the entries are final."""
        with self._lock:
            self._closed = True

    def open_for_adds(self) -> None:
        with self._lock:
            self._closed = False

    def find(self, oid: str) -> tuple[int, int] | None:
        return self.entries.get(oid)

    def reader(self, offset: int, size: int) -> PackedObjectReader:
        return PackedObjectReader(self.fd, offset, size, self)

    def finish(self, packs_dir: Path, close: bool = True) -> Path | None:
        """Write the index, fsync if needed, rename into `packs_dir`; None if empty.

        `close=False` leaves the descriptor open for readers this pack handed out."""
        with self._lock:
            if not self.entries:
                self.abort()
                return None
            final = _seal(self.fd, self.end, sorted(self.entries.items()), packs_dir, self.durable, self.tmp_path)
            if close:
                _close_once(self)
            return final

    __del__ = _close_once

    def abort(self) -> None:
        _close_once(self)
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass


def _try_lock(fd: int, blocking: bool = False) -> bool:
    """flock(2) `fd` exclusively; False if another process holds it, or where file locks
    do not work (then nobody can tell a live writer from a dead one: never recover)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except OSError:
        return False


def writer_gone(path: Path) -> bool:
    """Whether nobody holds the lock of this temporary pack (its writer is dead); False
    where file locks do not work, since a live writer could not be told from a dead one."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return _try_lock(fd)
    finally:
        os.close(fd)


def orphaned_records(path: Path) -> Iterator[tuple[str, bytes]] | None:
    """The objects of a pack its writer left unfinished (killed): each record whose bytes
    still hash to its oid, up to the first one that does not (a torn end). None while
    the writer lives (it holds the file's lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    head = os.pread(fd, HEADER.size, 0)
    if len(head) < HEADER.size or HEADER.unpack(head)[0] != MAGIC or not _try_lock(fd):
        os.close(fd)  # not a store pack (never ours to delete), or its writer lives
        return None

    def records() -> Iterator[tuple[str, bytes]]:
        import hashlib

        try:
            size = os.fstat(fd).st_size
            at = HEADER.size
            while at + RECORD.size <= size:
                raw, length = RECORD.unpack(os.pread(fd, RECORD.size, at))
                if at + RECORD.size + length > size or length >= 1 << 32:
                    return
                data = os.pread(fd, length, at + RECORD.size)
                if hashlib.sha256(data).digest() != raw:
                    return
                yield raw.hex(), data
                at += RECORD.size + length
        finally:
            os.close(fd)

    return records()


def _seal(
    fd: int, index_offset: int, entries: list[tuple[str, tuple[int, int]]], packs_dir: Path, durable: bool, tmp: Path
) -> Path:
    """Append index and trailer to the pack open at `fd`, then rename `tmp` to its name."""
    index = b"".join(ENTRY.pack(bytes.fromhex(oid), offset, size) for oid, (offset, size) in entries)
    digest = digests.new("sha256", index).digest()
    tail = index + TRAILER.pack(index_offset, len(entries), digest, TRAILER_MAGIC)
    view = memoryview(tail)
    at = index_offset
    while view:
        n = os.pwrite(fd, view, at)
        view, at = view[n:], at + n
    if durable:
        os.fsync(fd)
    os.fchmod(fd, 0o444)
    packs_dir.mkdir(parents=True, exist_ok=True)
    final = packs_dir / f"{digest.hex()[:40]}{SUFFIX}"
    os.replace(tmp, final)
    return final


def write_pack(
    tmp_dir: Path, packs_dir: Path, objects: Iterable[tuple[str, PackedObjectReader]], durable: bool = True
) -> Path | None:
    """A new pack holding `objects` (copied from readers); None when there are none."""
    pending = PendingPack(tmp_dir)
    try:
        for oid, reader in objects:
            if oid in pending.entries:
                continue
            size = reader.seek(0, io.SEEK_END)
            reader.seek(0)
            oscalls.pwrite_all(pending.fd, RECORD.pack(bytes.fromhex(oid), size), pending.end)
            at = pending.end = pending.end + RECORD.size
            while block := reader.read(1 << 20):
                oscalls.pwrite_all(pending.fd, block, pending.end)
                pending.end += len(block)
            if pending.end - at != size:
                raise OSError(f"object {oid[:10]} changed size while being copied")
            pending.entries[oid] = (at, size)
        pending.durable = durable
        return pending.finish(packs_dir)
    except BaseException:
        pending.abort()
        raise


def is_pack_name(name: str) -> bool:
    stem = name[: -len(SUFFIX)]
    return name.endswith(SUFFIX) and len(stem) == 40 and all(c in "0123456789abcdef" for c in stem)
