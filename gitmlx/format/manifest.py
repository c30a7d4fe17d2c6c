"""Manifests: how to rebuild one object from chunks stored in packs on a remote.

Owns: the Manifest value and its binary encoding (docs/storage-format.md, "Manifest").
Must not: do I/O. `decode` validates everything a hostile remote could get wrong
(checksum, counts, lengths, pack indexes), so later code can trust the numbers.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gitmlx.errors import IntegrityError
from gitmlx.format.chunking import MAX_SIZE as MAX_CHUNK
from gitmlx.format.pointer import Pointer

MAGIC = b"MLXMAN01"
_HEADER = struct.Struct("<8s32sQII")  # magic, object sha256, object size, pack count, chunk count
_CHUNK = struct.Struct("<32sIQIIB")  # chunk sha256, pack index, pack offset, stored len, raw len, codec
_TRAILER = 32  # sha256 of everything before it

CODEC_RAW = 0
CODEC_ZSTD = 1
#: Byte-grouped zstd (float data); written only to remotes of format 2 or later.
CODEC_GROUPED = 2
CODECS = (CODEC_RAW, CODEC_ZSTD, CODEC_GROUPED)
#: A compressed chunk may not claim more stored bytes than this (zstd's worst case is far below).
_MAX_STORED = MAX_CHUNK + 4096


@dataclass(frozen=True)
class ChunkRef:
    """Where one chunk's bytes are: `stored` bytes at `offset` in pack `pack`."""

    hash: bytes  # sha256 of the raw (uncompressed) chunk, 32 bytes
    pack: str  # pack id: 64 lowercase hex digits
    offset: int
    stored: int
    raw: int
    codec: int


class ChunkTable(Sequence[ChunkRef]):
    """A decoded manifest's chunk records, kept as the 53 bytes each has on the wire and
    made into a ChunkRef only when asked: a ChunkRef object costs several times its
    record, and a manifest of a million chunks would otherwise cost several times its
    size in memory, per concurrent download."""

    __slots__ = ("_records", "_packs", "_count")

    def __init__(self, records: memoryview, packs: list[str], count: int) -> None:
        self._records, self._packs, self._count = records, packs, count

    def __len__(self) -> int:
        return self._count

    def _ref(self, i: int) -> ChunkRef:
        digest, pack_index, offset, stored, raw, codec = _CHUNK.unpack_from(self._records, _CHUNK.size * i)
        return ChunkRef(bytes(digest), self._packs[pack_index], offset, stored, raw, codec)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._ref(k) for k in range(*i.indices(self._count))]
        if i < 0:
            i += self._count
        if not 0 <= i < self._count:
            raise IndexError("chunk index out of range")
        return self._ref(i)

    def __iter__(self) -> Iterator[ChunkRef]:
        for i in range(self._count):
            yield self._ref(i)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != self._count:
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))


@dataclass(frozen=True)
class Manifest:
    oid: str
    size: int
    #: A tuple when written here, a ChunkTable when decoded.
    chunks: Sequence[ChunkRef]

    @property
    def pointer(self) -> Pointer:
        return Pointer(self.oid, self.size)

    def packs(self) -> list[str]:
        """Pack ids in first-use order."""
        return list(dict.fromkeys(c.pack for c in self.chunks))

    def encode(self) -> bytes:
        packs = self.packs()
        index = {p: i for i, p in enumerate(packs)}
        parts = [_HEADER.pack(MAGIC, bytes.fromhex(self.oid), self.size, len(packs), len(self.chunks))]
        parts += [bytes.fromhex(p) for p in packs]
        parts += [_CHUNK.pack(c.hash, index[c.pack], c.offset, c.stored, c.raw, c.codec) for c in self.chunks]
        body = b"".join(parts)
        return body + hashlib.sha256(body).digest()


def decode(data: bytes | bytearray | memoryview, expected: Pointer) -> Manifest:
    """Parse and validate a manifest fetched for `expected`; IntegrityError if it is bad."""

    def bad(why: str) -> IntegrityError:
        return IntegrityError(
            f"manifest for object {expected.short_oid} is invalid ({why})",
            "the remote copy is damaged: push the file again from a clone that has it",
        )

    if len(data) < _HEADER.size + _TRAILER:
        raise bad("too short")
    view = memoryview(data)
    body, trailer = view[:-_TRAILER], view[-_TRAILER:]
    if hashlib.sha256(body).digest() != trailer:
        raise bad("checksum mismatch")
    magic, oid, size, pack_count, chunk_count = _HEADER.unpack_from(body)
    if magic != MAGIC:
        raise bad("unknown manifest version")
    if oid.hex() != expected.oid or size != expected.size:
        raise bad("it describes another object")
    if len(body) != _HEADER.size + 32 * pack_count + _CHUNK.size * chunk_count:
        raise bad("length does not match its counts")
    pos = _HEADER.size
    packs = [body[pos + 32 * i : pos + 32 * (i + 1)].hex() for i in range(pack_count)]
    records = body[pos + 32 * pack_count :]
    total = 0
    for i, (_digest, pack_index, _offset, stored, raw, codec) in enumerate(_CHUNK.iter_unpack(records)):
        if pack_index >= pack_count or codec not in CODECS:
            raise bad(f"chunk {i} names no pack or an unknown codec")
        if not (0 < raw <= MAX_CHUNK and 0 < stored <= _MAX_STORED) or (codec == CODEC_RAW and stored != raw):
            raise bad(f"chunk {i} has impossible lengths")
        total += raw
    if total != size:
        raise bad("its chunks do not add up to the object's size")
    return Manifest(expected.oid, size, ChunkTable(records, packs, chunk_count))
