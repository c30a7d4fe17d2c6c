"""Shards: many objects' manifests in one remote file (remote format 2).

Owns: the shard's binary encoding (docs/storage-format.md, "Shard"): a sorted table of
entries (oid, object size, where its manifest lies) followed by the manifests themselves,
each exactly a format-1 manifest, and a trailing sha256. A push of N small objects writes
one shard instead of N manifest keys, and a clone reads one shard instead of N keys.
Must not: do I/O. Decoding validates everything a hostile remote could get wrong in the
header and table (counts, order, ranges) before a caller trusts a number; each manifest is
then checked by `manifest.decode` like one read from its own key.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gitmlx.errors import IntegrityError

MAGIC = b"MLXSHD01"
HEADER = struct.Struct("<8sII")  # magic, entry count, reserved (0)
ENTRY = struct.Struct("<32sQQQ")  # oid (raw sha256), object size, manifest offset, manifest length
TRAILER = 32
#: A reader refuses a table claiming more entries than this (56 MiB of table).
MAX_ENTRIES = 1_000_000
#: The smallest manifest (an empty object's) and the largest a reader accepts.
MIN_MANIFEST = 88
MAX_MANIFEST = 1024 * 1024 * 1024
#: A writer starts a new shard past either bound (readers accept any size up to MAX_ENTRIES).
WRITE_ENTRIES = 100_000
WRITE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Entry:
    """Where one object's manifest lies in its shard."""

    oid: str
    size: int
    offset: int
    length: int


def _bad(why: str) -> IntegrityError:
    return IntegrityError(
        f"a manifest shard on the remote is invalid ({why})",
        "the remote copy is damaged: run 'git mlx fsck --remote' and push again from a clone that has the files",
    )


def encode(manifests: Iterable[tuple[str, int, bytes]]) -> bytes:
    """A shard holding each (oid, object size, encoded manifest); one entry per oid (the
    first given wins), sorted by oid as the format requires."""
    return b"".join(encode_parts(manifests))


def encode_parts(manifests: Iterable[tuple[str, int, bytes]]) -> Iterator[bytes | bytearray]:
    """`encode`'s bytes in pieces, header and table first, for a writer that streams them
    to a file instead of joining a second copy of every manifest (a push of 100,000 small
    objects: ~20 MiB)."""
    unique: dict[str, tuple[str, int, bytes]] = {}
    for item in manifests:
        unique.setdefault(item[0], item)
    oids = sorted(unique)
    offset = table_length(len(oids))
    table = bytearray(offset)
    HEADER.pack_into(table, 0, MAGIC, len(oids), 0)
    digest = hashlib.sha256()
    for i, oid in enumerate(oids):
        _, size, data = unique[oid]
        ENTRY.pack_into(table, HEADER.size + ENTRY.size * i, bytes.fromhex(oid), size, offset, len(data))
        offset += len(data)
    digest.update(table)
    yield table
    for oid in oids:
        data = unique[oid][2]
        digest.update(data)
        yield data
    yield digest.digest()


def split(manifests: list[tuple[str, int, bytes]]) -> list[list[tuple[str, int, bytes]]]:
    """Groups of manifests, each small enough for one shard (WRITE_ENTRIES, WRITE_BYTES)."""
    groups: list[list[tuple[str, int, bytes]]] = [[]]
    size = 0
    for item in manifests:
        cost = ENTRY.size + len(item[2])
        if groups[-1] and (len(groups[-1]) >= WRITE_ENTRIES or size + cost > WRITE_BYTES):
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += cost
    return [g for g in groups if g]


def entry_count(head: bytes | memoryview) -> int:
    """The entry count in a shard's first 16 bytes (validated: magic, reserved, bound)."""
    if len(head) < HEADER.size:
        raise _bad("too short")
    magic, count, reserved = HEADER.unpack_from(head)
    if magic != MAGIC:
        raise _bad("unknown shard version")
    if reserved != 0 or count > MAX_ENTRIES:
        raise _bad("impossible header")
    return count


def table_length(count: int) -> int:
    """Bytes from the start of a shard to the end of its entry table."""
    return HEADER.size + ENTRY.size * count


def check_table(data: bytes | memoryview, shard_size: int) -> memoryview:
    """The entry table (E × ENTRY.size bytes, no header) of a shard of `shard_size` bytes,
    from at least its first `table_length(E)` bytes; IntegrityError if the header or
    table breaks a rule. No per-entry object is kept: a reader of 100,000 entries holds
    the table's bytes, not 100,000 objects."""
    count = entry_count(data)
    end = table_length(count)
    if len(data) < end or shard_size < end + TRAILER:
        raise _bad("shorter than its table")
    limit = shard_size - TRAILER
    table = memoryview(data)[HEADER.size : end]
    previous = b""
    for raw_oid, _, offset, length in ENTRY.iter_unpack(table):
        if raw_oid <= previous:
            raise _bad("entries not sorted by oid")
        previous = raw_oid
        if not (MIN_MANIFEST <= length <= MAX_MANIFEST) or offset < end or offset + length > limit:
            raise _bad(f"entry {raw_oid.hex()[:10]} points outside the shard")
    return table


def entries(table: bytes | memoryview) -> list[Entry]:
    """One Entry per entry of a table `check_table` passed."""
    return [Entry(raw_oid.hex(), size, offset, length) for raw_oid, size, offset, length in ENTRY.iter_unpack(table)]


def check(data: bytes | memoryview) -> memoryview:
    """The entry table of a whole shard (`check_table`), after checking its trailing sha256."""
    view = memoryview(data)
    if len(view) < HEADER.size + TRAILER:
        raise _bad("too short")
    if hashlib.sha256(view[:-TRAILER]).digest() != view[-TRAILER:]:
        raise _bad("checksum mismatch")
    return check_table(view, len(view))


def decode(data: bytes | memoryview) -> list[Entry]:
    """The entries of a whole shard, after checking its trailing sha256."""
    return entries(check(data))


def shard_id(data: bytes | memoryview) -> str:
    """A shard's name: the sha256 of its bytes, lowercase hex."""
    return hashlib.sha256(data).hexdigest()
