"""The test suite's one reader (and writer) of gitmlx's on-disk formats, from the outside.

Owns: the pointer text (docs/pointer-format.md), the remote's manifests and how their chunks
rebuild an object (docs/storage-format.md, "Manifest"), and the local store's packs
(docs/local-store.md, "Store packs"): parsing them, listing what breaks the format's rules,
and writing one as the docs describe.
Must not: import gitmlx. The formats are read as another tool would read them, so a bug in
gitmlx's own reader cannot hide itself here; the tests that use these functions are what
check gitmlx against the docs.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePath

# --- pointers --------------------------------------------------------------------------

MLX_VERSION = "https://gitmlx.dev/spec/v1"
POINTER_RE = re.compile(rb"version https://gitmlx\.dev/spec/v1\noid sha256:([0-9a-f]{64})\nsize (0|[1-9][0-9]*)\n")
OID = re.compile(r"[0-9a-f]{64}")


def pointer_text(oid: str, size: int, version: str = MLX_VERSION) -> bytes:
    return f"version {version}\noid sha256:{oid}\nsize {size}\n".encode()


def parse_pointer(data: bytes) -> tuple[str, int] | None:
    """(oid, size) when `data` is exactly a gitmlx pointer, else None."""
    match = POINTER_RE.fullmatch(data)
    return (match.group(1).decode(), int(match.group(2))) if match else None


# --- the remote (format 1): keys, manifests, chunks --------------------------------------

MANIFEST_MAGIC = b"MLXMAN01"
MANIFEST_HEADER = struct.Struct("<8s32sQII")  # magic, raw oid, size, pack count, chunk count
CHUNK_RECORD = struct.Struct("<32sIQIIB")  # chunk hash, pack index, offset, stored, raw, codec
MAX_RAW = 262_144
MAX_STORED = 266_240
MANIFEST_KEY = re.compile(r"manifests/([0-9a-f]{2})/([0-9a-f]{2})/([0-9a-f]{64})")
PACK_KEY = re.compile(r"packs/([0-9a-f]{2})/([0-9a-f]{64})\.pack")


def pack_table_id(stored_chunks: Iterable[bytes]) -> str:
    """A pack's table id (docs/storage-format.md, "Pack ids"), from its stored chunks' bytes
    in pack order."""
    digest = hashlib.sha256(b"gitmlx pack table 1\n")
    for stored in stored_chunks:
        digest.update(hashlib.sha256(stored).digest() + struct.pack("<Q", len(stored)))
    return digest.hexdigest()


def manifest_key(oid: str) -> str:
    return f"manifests/{oid[0:2]}/{oid[2:4]}/{oid}"


def pack_key(pack_id: str) -> str:
    return f"packs/{pack_id[:2]}/{pack_id}.pack"


@dataclass(frozen=True)
class Chunk:
    pack: str  # pack id, hex
    offset: int
    stored: int
    raw: int
    codec: int  # 0 raw, 1 zstd
    hash: bytes  # sha256 of the raw bytes


def decode_manifest(data: bytes, oid: str) -> tuple[int, list[Chunk]]:
    """(object size, chunks) of a manifest named `oid`, checked against every rule the docs
    give a reader; ValueError saying which one it breaks."""
    if len(data) < MANIFEST_HEADER.size + 32:
        raise ValueError("too short")
    body, trailer = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != trailer:
        raise ValueError("checksum mismatch")
    magic, raw_oid, size, packs, chunks = MANIFEST_HEADER.unpack_from(body)
    if magic != MANIFEST_MAGIC:
        raise ValueError(f"magic {magic!r}")
    if raw_oid.hex() != oid:
        raise ValueError(f"describes {raw_oid.hex()[:10]}, is named {oid[:10]}")
    if len(body) != MANIFEST_HEADER.size + 32 * packs + CHUNK_RECORD.size * chunks:
        raise ValueError("length does not match the counts")
    ids = [body[56 + 32 * i : 56 + 32 * (i + 1)].hex() for i in range(packs)]
    out = []
    for i in range(chunks):
        digest, index, offset, stored, raw, codec = CHUNK_RECORD.unpack_from(
            body, 56 + 32 * packs + CHUNK_RECORD.size * i
        )
        if index >= packs or codec not in (0, 1):
            raise ValueError(f"chunk {i}: pack index or codec")
        if not (0 < raw <= MAX_RAW and 0 < stored <= MAX_STORED) or (codec == 0 and stored != raw):
            raise ValueError(f"chunk {i}: lengths")
        out.append(Chunk(ids[index], offset, stored, raw, codec, digest))
    if sum(c.raw for c in out) != size:
        raise ValueError("chunks do not add up to the size")
    return size, out


def rebuild(chunks: Iterable[Chunk], read_range: Callable[[str, int, int], bytes]) -> str:
    """sha256 of the object the chunks describe, reading stored bytes through `read_range`
    (pack id, offset, length); ValueError when a pack is short or a chunk is wrong."""
    import zstandard  # only rebuilding needs it

    digest = hashlib.sha256()
    for chunk in chunks:
        stored = read_range(chunk.pack, chunk.offset, chunk.stored)
        if len(stored) != chunk.stored:
            raise ValueError(f"pack {chunk.pack[:10]} is short")
        raw = stored if chunk.codec == 0 else zstandard.ZstdDecompressor().decompress(stored, chunk.raw)
        if hashlib.sha256(raw).digest() != chunk.hash:
            raise ValueError(f"a chunk in pack {chunk.pack[:10]} does not match its hash")
        digest.update(raw)
    return digest.hexdigest()


# --- the remote (format 2): shards of manifests ---------------------------------------

SHARD_MAGIC = b"MLXSHD01"
SHARD_HEADER = struct.Struct("<8sII")  # magic, entry count, reserved
SHARD_ENTRY = struct.Struct("<32sQQQ")  # raw oid, object size, manifest offset, manifest length
SHARD_KEY = re.compile(r"shards/([0-9a-f]{64})\.shard")


def shard_key(shard_id: str) -> str:
    return f"shards/{shard_id}.shard"


def decode_shard(data: bytes) -> list[tuple[str, int, int, int]]:
    """(oid, object size, manifest offset, manifest length) of each entry of a whole shard,
    checked against every rule the docs give a reader; ValueError saying which it breaks."""
    if len(data) < SHARD_HEADER.size + 32:
        raise ValueError("too short")
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise ValueError("checksum mismatch")
    magic, count, reserved = SHARD_HEADER.unpack_from(data)
    if magic != SHARD_MAGIC or reserved != 0 or count > 1_000_000:
        raise ValueError("header")
    end = SHARD_HEADER.size + SHARD_ENTRY.size * count
    if len(data) < end + 32:
        raise ValueError("shorter than its table")
    out, previous = [], b""
    for i in range(count):
        raw, size, offset, length = SHARD_ENTRY.unpack_from(data, SHARD_HEADER.size + SHARD_ENTRY.size * i)
        if raw <= previous:
            raise ValueError("entries not sorted")
        previous = raw
        if not (88 <= length <= 2**30) or offset < end or offset + length > len(data) - 32:
            raise ValueError(f"entry {i} points outside the manifest area")
        out.append((raw.hex(), size, offset, length))
    return out


def encode_shard(items: Iterable[tuple[str, int, bytes]]) -> bytes:
    """A shard of (oid, object size, manifest bytes), as the docs tell a writer to make it."""
    rows = sorted(dict((oid, (size, data)) for oid, size, data in items).items())
    offset = SHARD_HEADER.size + SHARD_ENTRY.size * len(rows)
    parts = [SHARD_HEADER.pack(SHARD_MAGIC, len(rows), 0)]
    for oid, (size, data) in rows:
        parts.append(SHARD_ENTRY.pack(bytes.fromhex(oid), size, offset, len(data)))
        offset += len(data)
    body = b"".join(parts + [data for _, (_, data) in rows])
    return body + hashlib.sha256(body).digest()


# --- the local store: loose objects and store packs --------------------------------------

SMALL_OBJECT_LIMIT = 2 * 1024 * 1024  # objects below this size may go into store packs
STORE_PACK_MAGIC = b"MLXSPACK"
STORE_PACK_VERSION = 1
STORE_PACK_TRAILER_MAGIC = b"MLXSIDX1"
STORE_PACK_SUFFIX = ".mlxpack"
STORE_PACK_NAME = re.compile(r"[0-9a-f]{40}\.mlxpack")
STORE_PACK_HEADER = struct.Struct(">8sII")  # magic, version, reserved
STORE_PACK_RECORD = struct.Struct(">32sQ")  # before each object: raw oid, size
STORE_PACK_ENTRY = struct.Struct(">32sQQ")  # index entry: raw oid, offset, size
STORE_PACK_TRAILER = struct.Struct(">QQ32s8s")  # index offset, count, sha256(index), magic


def loose_object_key(oid: str) -> str:
    """Where a loose object lives, relative to the store (the same layout as Git LFS's)."""
    return f"objects/{oid[0:2]}/{oid[2:4]}/{oid}"


def is_loose_object_path(path: PurePath) -> bool:
    """Whether `path` ends in <oid[0:2]>/<oid[2:4]>/<oid>: the only name a loose object has."""
    name = path.name
    return bool(OID.fullmatch(name)) and path.parent.name == name[2:4] and path.parent.parent.name == name[:2]


@dataclass(frozen=True)
class StorePack:
    """What a whole store pack's header, trailer and index say."""

    version: int
    reserved: int
    index_offset: int
    digest: bytes  # sha256 of the index bytes
    entries: list[tuple[bytes, int, int]]  # (raw oid, offset, size), in index order


def parse_store_pack(data: bytes) -> StorePack:
    """A store pack's index, once the file is whole: long enough, both magics, an index
    that ends the file and hashes to the trailer's digest. ValueError otherwise (a reader
    ignores such a file: it is no pack)."""
    if (
        len(data) < STORE_PACK_HEADER.size + STORE_PACK_TRAILER.size
        or data[:8] != STORE_PACK_MAGIC
        or data[-8:] != STORE_PACK_TRAILER_MAGIC
    ):
        raise ValueError("not a whole pack")
    _magic, version, reserved = STORE_PACK_HEADER.unpack_from(data, 0)
    index_offset, count, digest, _end = STORE_PACK_TRAILER.unpack_from(data, len(data) - STORE_PACK_TRAILER.size)
    index = data[index_offset : index_offset + STORE_PACK_ENTRY.size * count]
    if index_offset + STORE_PACK_ENTRY.size * count + STORE_PACK_TRAILER.size != len(data):
        raise ValueError(f"index at {index_offset} with {count} entries does not end a {len(data)}-byte file")
    if hashlib.sha256(index).digest() != digest:
        raise ValueError("the index does not hash to its digest")
    entries = [STORE_PACK_ENTRY.unpack_from(index, i * STORE_PACK_ENTRY.size) for i in range(count)]
    return StorePack(version, reserved, index_offset, digest, entries)


def store_pack_name(digest: bytes) -> str:
    """A finished pack's name: the first 40 hex digits of its index digest."""
    return digest.hex()[:40] + STORE_PACK_SUFFIX


def store_pack_problems(pack: StorePack) -> list[str]:
    """Every rule of the format a whole pack breaks beyond being whole: the version, the
    reserved word, entries sorted and unique, each range inside the object area, each
    object under 2 MiB, no two ranges overlapping."""
    problems = []
    if pack.version != STORE_PACK_VERSION:
        problems.append(f"version {pack.version}")
    if pack.reserved != 0:
        problems.append(f"reserved word {pack.reserved}")
    if pack.index_offset < STORE_PACK_HEADER.size:
        problems.append(f"index offset {pack.index_offset}")
    previous = b""
    for i, (raw, offset, size) in enumerate(pack.entries):
        if raw <= previous:
            problems.append(f"index entry {i} is out of order or repeated")
        previous = raw
        if not (STORE_PACK_HEADER.size <= offset and offset + size <= pack.index_offset):
            problems.append(f"object {raw.hex()[:10]} at [{offset}, +{size}] is outside the object area")
        if size >= SMALL_OBJECT_LIMIT:
            problems.append(f"object {raw.hex()[:10]} of {size} bytes")
    ranges = sorted((offset, offset + size) for _raw, offset, size in pack.entries if size)
    for (_, end_a), (start_b, _) in itertools.pairwise(ranges):
        if end_a > start_b:
            problems.append(f"two objects overlap at {start_b}")
    return problems


def store_pack_bytes(objects: Mapping[str, bytes]) -> tuple[str, bytes]:
    """(name, bytes) of a store pack holding `objects` (oid -> bytes), written as the docs
    describe: header, one record per object (raw oid, size, bytes), index sorted by oid,
    trailer."""
    body = bytearray(STORE_PACK_HEADER.pack(STORE_PACK_MAGIC, STORE_PACK_VERSION, 0))
    entries = []
    for oid, data in objects.items():
        body += STORE_PACK_RECORD.pack(bytes.fromhex(oid), len(data))
        entries.append((bytes.fromhex(oid), len(body), len(data)))
        body += data
    index = b"".join(STORE_PACK_ENTRY.pack(*entry) for entry in sorted(entries))
    digest = hashlib.sha256(index).digest()
    trailer = STORE_PACK_TRAILER.pack(len(body), len(entries), digest, STORE_PACK_TRAILER_MAGIC)
    return store_pack_name(digest), bytes(body) + index + trailer
