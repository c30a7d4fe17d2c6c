"""gitmlx.format.shard: the format 2 shard encoding and the bounds its decoder enforces."""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.errors import IntegrityError
from gitmlx.format import layout, shard
from gitmlx.format.manifest import ChunkRef, Manifest, decode
from gitmlx.format.pointer import Pointer

EMPTY_OID = hashlib.sha256(b"").hexdigest()


def _manifest(seed: int) -> tuple[str, int, bytes]:
    data = seed.to_bytes(4, "little") * 10
    oid = hashlib.sha256(data).hexdigest()
    chunk = ChunkRef(hashlib.sha256(data).digest(), "ab" * 32, seed * 40, 40, 40, 0)
    return oid, 40, Manifest(oid, 40, (chunk,)).encode()


def _empty() -> tuple[str, int, bytes]:
    return EMPTY_OID, 0, Manifest(EMPTY_OID, 0, ()).encode()


def _trailer(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def test_a_shard_round_trips_and_every_manifest_decodes_at_its_entry() -> None:
    items = [_manifest(i) for i in range(20)] + [_empty()]
    data = shard.encode(items)
    entries = shard.decode(data)
    assert [e.oid for e in entries] == sorted(oid for oid, _, _ in items)
    by_oid = {oid: (size, m) for oid, size, m in items}
    for e in entries:
        size, manifest = by_oid[e.oid]
        assert e.size == size
        assert data[e.offset : e.offset + e.length] == manifest
        decode(data[e.offset : e.offset + e.length], Pointer(e.oid, e.size))


def test_the_layout_is_what_the_doc_says() -> None:
    oid, size, manifest = _empty()
    data = shard.encode([(oid, size, manifest)])
    assert data[:8] == b"MLXSHD01"
    assert struct.unpack_from("<II", data, 8) == (1, 0)
    assert struct.unpack_from("<32sQQQ", data, 16) == (bytes.fromhex(oid), 0, 72, 88)
    assert data[72:160] == manifest
    assert len(data) == 16 + 56 + 88 + 32
    assert data[-32:] == hashlib.sha256(data[:-32]).digest()
    assert layout.shard_key(shard.shard_id(data)) == f"shards/{hashlib.sha256(data).hexdigest()}.shard"


def test_a_duplicate_oid_is_written_once() -> None:
    item = _manifest(3)
    assert len(shard.decode(shard.encode([item, item]))) == 1


def test_split_keeps_each_group_under_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shard, "WRITE_ENTRIES", 3)
    groups = shard.split([_manifest(i) for i in range(10)])
    assert [len(g) for g in groups] == [3, 3, 3, 1]


def _header_and_table(count: int, entries: list[tuple[bytes, int, int, int]], reserved: int = 0) -> bytes:
    return struct.pack("<8sII", b"MLXSHD01", count, reserved) + b"".join(struct.pack("<32sQQQ", *e) for e in entries)


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: b"MLXSHD02" + d[8:], "unknown shard version"),
        (lambda d: d[:12] + b"\x01\x00\x00\x00" + d[16:], "impossible header"),
        (lambda d: d[:8] + struct.pack("<I", shard.MAX_ENTRIES + 1) + d[12:], "impossible header"),
        (lambda d: d[:8] + struct.pack("<I", 1000) + d[12:], "shorter than its table"),
    ],
)
def test_a_bad_header_is_refused_by_the_table_decoder(mutate, why: str) -> None:
    data = mutate(shard.encode([_manifest(i) for i in range(3)]))
    with pytest.raises(IntegrityError, match=why):
        shard.entries(shard.check_table(data, len(data)))


def test_unsorted_or_repeated_entries_are_refused() -> None:
    a, b = sorted([bytes([1]) * 32, bytes([2]) * 32])
    for order in ([b, a], [a, a]):
        table = _header_and_table(2, [(oid, 0, 128, 88) for oid in order])
        data = table + b"\0" * (88 + 32)
        with pytest.raises(IntegrityError, match="not sorted"):
            shard.entries(shard.check_table(data, len(data)))


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, 88), (71, 88), (72, 87), (72, 89), (72, shard.MAX_MANIFEST + 1), (2**63, 88), (72, 2**64 - 1)],
)
def test_an_entry_pointing_outside_the_manifest_area_is_refused(offset: int, length: int) -> None:
    table = _header_and_table(1, [(bytes(32), 0, offset, length)])
    data = table + b"\0" * (88 + 32)  # room for one 88-byte manifest, then the trailer
    with pytest.raises(IntegrityError, match="outside"):
        shard.entries(shard.check_table(data, len(data)))


def test_a_whole_shard_with_a_wrong_trailer_is_refused() -> None:
    data = bytearray(shard.encode([_manifest(1)]))
    data[-1] ^= 1
    with pytest.raises(IntegrityError, match="checksum"):
        shard.decode(bytes(data))


def test_an_empty_shard_is_read_but_never_written_by_split() -> None:
    assert shard.decode(_trailer(_header_and_table(0, []))) == []
    assert shard.split([]) == []


@given(st.binary(max_size=400))
def test_any_bytes_decode_or_fail_with_an_integrity_error(data: bytes) -> None:
    for attempt in (lambda: shard.decode(data), lambda: shard.entries(shard.check_table(data, len(data) + 64))):
        try:
            entries = attempt()
        except IntegrityError:
            continue
        for e in entries:
            assert e.offset + e.length <= len(data) + 64 - 32


def test_shard_keys_parse_back_and_refuse_other_names() -> None:
    sid = hashlib.sha256(b"s").hexdigest()
    assert layout.shard_id_from_key(layout.shard_key(sid)) == sid
    for key in (f"shards/{sid.upper()}.shard", f"shards/{sid}", f"shards/x/{sid}.shard", f"shards/{sid}.shard.tmp"):
        assert layout.shard_id_from_key(key) is None
    with pytest.raises(ValueError):
        layout.shard_key("../x")
