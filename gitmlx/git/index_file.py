"""Recording fresh stat data in git's index for files gitmlx wrote itself.

Owns: reading `<git-dir>/index` (format versions 2, 3 and 4, SHA-1 and SHA-256
repositories), rewriting the stat fields of named stage-0 entries in place, and writing
the result back under git's own lock protocol (`index.lock`, created exclusively, renamed
over `index`).

Why this exists: after gitmlx replaces a pointer file with its content (pull, checkout,
files placed outside git's memory), git's index still holds the pointer file's size and
times. git has no plumbing that records new stat data without re-reading the file:
`git update-index <path>` pipes the whole file through the clean filter again (seconds
per GiB), and `--refresh` takes a size change for a modification without reading it.
The blob does not change, only the cached stat data does, so the entry is patched byte for
byte and nothing else in the file moves: extensions (cache tree, untracked cache,
fsmonitor, end-of-index) are kept as they are, since none of them covers a tracked file's
stat data. pygit2 cannot do it: libgit2's IndexEntry exposes no stat fields, and its
index writer re-diffs "racy" entries without knowing gitmlx's filter.

What git compares (read-cache.c, `ce_match_stat_basic`): mtime, ctime, inode, uid, gid,
size and, when built with USE_STDEV, the device, each truncated to 32 bits. The index is
written after the files, so its own mtime is newer than theirs and git does not treat
the entries as racily clean. A split index (`link` extension) is not patched: its
entries live in another file; callers then fall back to `git update-index`.

Must not: change an entry's object id, mode, flags or path, or touch an index whose
checksum does not verify.
"""

from __future__ import annotations

import os
import struct
import time
from array import array
from collections import namedtuple
from collections.abc import Iterator, Mapping
from pathlib import Path

from gitmlx.osutil import digests

_HEADER = struct.Struct(">4sLL")
#: ctime s, ns, mtime s, ns, dev, ino, mode, uid, gid, size: ten 32-bit fields.
_STAT = struct.Struct(">10L")
_EXTENDED = 0x4000
_NAME_MASK = 0x0FFF
_STAGE_MASK = 0x3000
_HASHES = {"sha1": 20, "sha256": 32}


class IndexLocked(Exception):
    """Another git process holds `index.lock`."""


class Wanted(namedtuple("_WantedFields", ("blob_ids", "stat"))):
    """An entry to refresh: the blob ids it may hold (a frozenset of raw ids), and the
    file's os.stat_result now. A named tuple: the filter imports this module (see
    docs/design.md, "Start-up")."""

    __slots__ = ()


def _stat_fields(st: os.stat_result, mode: int) -> bytes:
    m = 0xFFFFFFFF
    return _STAT.pack(
        int(st.st_ctime) & m,
        st.st_ctime_ns % 1_000_000_000,
        int(st.st_mtime) & m,
        st.st_mtime_ns % 1_000_000_000,
        st.st_dev & m,
        st.st_ino & m,
        mode,
        st.st_uid & m,
        st.st_gid & m,
        st.st_size & m,
    )


def _varint(data: bytes | bytearray, pos: int) -> tuple[int, int]:
    """git's offset varint (varint.c): the value and the position after it."""
    c = data[pos]
    pos += 1
    value = c & 0x7F
    while c & 0x80:
        c = data[pos]
        pos += 1
        value = ((value + 1) << 7) | (c & 0x7F)
    return value, pos


class _Entry(namedtuple("_EntryFields", ("start", "path", "oid", "flags"))):
    """One index entry: `start` is the offset of its stat data in the file."""

    __slots__ = ()


def _entries(data: bytes | bytearray, object_format: str) -> Iterator[_Entry]:
    """Walk a whole index file's entries, checking its checksum and its extensions."""
    hash_size = _HASHES[object_format]
    if len(data) < _HEADER.size + hash_size:
        raise ValueError("index too short")
    signature, version, count = _HEADER.unpack_from(data, 0)
    if signature != b"DIRC" or version not in (2, 3, 4):
        raise ValueError(f"not an index of version 2, 3 or 4 ({signature!r}, {version})")
    body_end = len(data) - hash_size
    trailer = bytes(data[body_end:])
    if trailer != bytes(hash_size) and digests.new(object_format, memoryview(data)[:body_end]).digest() != trailer:
        raise ValueError("index checksum mismatch")  # an all-zero trailer is index.skipHash
    pos = _HEADER.size
    fixed = _STAT.size + hash_size + 2
    previous = b""
    for _ in range(count):
        start = pos
        oid = bytes(data[start + _STAT.size : start + _STAT.size + hash_size])
        (flags,) = struct.unpack_from(">H", data, start + _STAT.size + hash_size)
        pos = start + fixed
        if flags & _EXTENDED:
            if version < 3:
                raise ValueError("extended flag in a version 2 index")
            pos += 2
        if version == 4:
            strip, pos = _varint(data, pos)
            end = data.index(0, pos)
            if strip > len(previous):
                raise ValueError("bad path compression")
            name = previous[: len(previous) - strip] + bytes(data[pos:end])
            pos = end + 1
        else:
            end = data.index(0, pos)
            name = bytes(data[pos:end])
            pos = start + ((end - start + 8) & ~7)
        if pos > body_end:
            raise ValueError("index entries run past the end")
        previous = name
        yield _Entry(start, name.decode("utf-8", "surrogateescape"), oid, flags)
    while pos + 8 <= body_end:
        ext, size = struct.unpack_from(">4sL", data, pos)
        if ext == b"link":
            raise ValueError("split index")
        pos += 8 + size


def patch(data: bytearray, wanted: Mapping[str, Wanted], object_format: str = "sha1") -> set[str]:
    """Rewrite the stat data of `wanted` entries in `data`; see `_patch`."""
    return _patch(data, wanted, object_format)[1]


def _patch(
    data: bytearray, wanted: Mapping[str, Wanted], object_format: str, report: bool = True
) -> tuple[int, set[str], int]:
    """Rewrite the stat data of `wanted` entries in `data` (a whole index file), in place.

    Returns how many entries were patched, their paths (only with `report`) and the
    newest mtime (ns) of their files (0 when none); an entry is skipped unless it is at
    stage 0 and holds one of the wanted blob ids. Raises ValueError for anything that is
    not a complete, checksummed index this code understands (and then `data` is
    unchanged).
    """
    # Where each entry starts, its path and the stat data, side by side: not the entries
    # and Wanted values themselves, which for 100,000 placed files took ~50 MiB until the
    # end, nor a tuple per entry (6 MiB more at the filter's peak).
    starts, paths, stats = array("Q"), [], []
    for entry in _entries(data, object_format):
        want = wanted.get(entry.path)
        if want is not None and not entry.flags & _STAGE_MASK and entry.oid in want.blob_ids:
            starts.append(entry.start)
            if report:
                paths.append(entry.path)
            stats.append(want.stat)
    for start, st in zip(starts, stats, strict=True):
        (mode,) = struct.unpack_from(">L", data, start + 24)
        data[start : start + _STAT.size] = _stat_fields(st, mode)
    body_end = len(data) - _HASHES[object_format]
    if starts and data[body_end:] != bytes(len(data) - body_end):
        data[body_end:] = digests.new(object_format, memoryview(data)[:body_end]).digest()
    return len(starts), set(paths), max((st.st_mtime_ns for st in stats), default=0)


def blob_ids(index_path: Path, object_format: str = "sha1") -> dict[str, bytes | None]:
    """Every path git's index file holds, with its stage-0 object id (None for a path
    only in conflict stages); ValueError for a file this code does not understand,
    OSError when it cannot be read."""
    found: dict[str, bytes | None] = {}
    for e in _entries(index_path.read_bytes(), object_format):
        if not e.flags & _STAGE_MASK:
            found[e.path] = e.oid
        else:
            found.setdefault(e.path, None)
    return found


def recorded_sizes(index_path: Path, object_format: str = "sha1") -> dict[str, int]:
    """The file size git's index records for each stage-0 entry (32 bits, as git keeps it)."""
    data = index_path.read_bytes()
    return {
        e.path: struct.unpack_from(">L", data, e.start + 36)[0]
        for e in _entries(data, object_format)
        if not e.flags & _STAGE_MASK
    }


def _stamp_after(fd: int, newest_ns: int) -> None:
    """Make the new index's mtime later than every file it vouches for.

    git takes an entry whose file is not older than the index itself for "racily clean"
    and re-reads the file through the clean filter at the next `git status` (a large
    artifact's whole content, even with the stat cache). File times come from the kernel's coarse
    clock (a few ms per tick), so an index written right after the last copy often
    carries the same time; touching it again once the clock has moved on costs a few ms
    at most. This settles it for a git built with USE_NSEC; one built without (Debian's
    2.39 here) compares whole seconds, so files placed in the index's second stay racy
    and are re-read once, as after git's own checkouts (waiting a second is not worth it).
    """
    for _ in range(200):
        if os.fstat(fd).st_mtime_ns > newest_ns:
            return
        time.sleep(0.001)
        os.utime(fd)


def record_stat(
    index_path: Path, wanted: Mapping[str, Wanted], object_format: str = "sha1", *, report: bool = True
) -> set[str]:
    """Patch the entries of `wanted` in the index file under git's lock; the paths patched
    (none with `report` False: a set of 100,000 paths is 11 MiB at the filter's peak).

    Raises IndexLocked when `index.lock` exists (another git command is running: waiting
    could deadlock against the git process that started us), ValueError for an index this
    module does not handle (callers fall back to `git update-index`), OSError as usual.
    """
    if not wanted:
        return set()
    lock = index_path.with_name(index_path.name + ".lock")
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        raise IndexLocked(str(lock)) from None
    committed = False
    try:
        with open(index_path, "rb") as f:
            # Read into its one buffer: bytearray(f.read()) held the index twice (the
            # filter's peak at the end of a clone of 100,000 files).
            data = bytearray(os.fstat(f.fileno()).st_size)
            if f.readinto(data) != len(data):
                raise ValueError("index changed size while read")
        count, patched, newest = _patch(data, wanted, object_format, report)
        if count:
            with os.fdopen(fd, "wb", closefd=True) as out:
                fd = -1
                out.write(data)
                out.flush()
                # The patched files' times, not every wanted one's: asking `wanted` again
                # made each Wanted once more (the filter's peak after a clone).
                _stamp_after(out.fileno(), newest)
                os.fsync(out.fileno())
            os.replace(lock, index_path)
            committed = True
        return patched
    finally:
        if fd >= 0:
            os.close(fd)
        if not committed:
            try:
                os.unlink(lock)
            except FileNotFoundError:
                pass
