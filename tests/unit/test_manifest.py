"""gitmlx.format.manifest: the binary manifest round-trips and rejects what a hostile remote sends."""

from __future__ import annotations

import hashlib
import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.errors import IntegrityError
from gitmlx.format import codec
from gitmlx.format.manifest import CODEC_RAW, CODEC_ZSTD, ChunkRef, Manifest, decode
from gitmlx.format.pointer import Pointer

PACK_A = hashlib.sha256(b"a").hexdigest()
PACK_B = hashlib.sha256(b"b").hexdigest()


def _manifest(raw_sizes: list[int], packs: list[str] | None = None) -> Manifest:
    chunks = []
    offset = 0
    for i, size in enumerate(raw_sizes):
        pack = (packs or [PACK_A])[i % len(packs or [PACK_A])]
        chunks.append(ChunkRef(hashlib.sha256(bytes([i])).digest(), pack, offset, size, size, CODEC_RAW))
        offset += size
    oid = hashlib.sha256(b"object").hexdigest()
    return Manifest(oid, sum(raw_sizes), tuple(chunks))


def test_round_trip() -> None:
    m = _manifest([100, 200, 300], [PACK_A, PACK_B])
    assert decode(m.encode(), m.pointer) == m
    assert m.packs() == [PACK_A, PACK_B]


def test_empty_object_has_no_chunks() -> None:
    m = Manifest(hashlib.sha256(b"").hexdigest(), 0, ())
    assert decode(m.encode(), m.pointer) == m


def test_length_is_header_tables_and_checksum() -> None:
    m = _manifest([10, 20], [PACK_A, PACK_B])
    assert len(m.encode()) == 56 + 32 * 2 + 53 * 2 + 32


def _reject(data: bytes, pointer: Pointer) -> str:
    with pytest.raises(IntegrityError) as caught:
        decode(data, pointer)
    assert pointer.short_oid in caught.value.message
    return caught.value.message


def test_flipped_byte_fails_checksum() -> None:
    m = _manifest([100, 200])
    data = bytearray(m.encode())
    data[60] ^= 1
    assert "checksum" in _reject(bytes(data), m.pointer)


def test_manifest_for_another_object_is_refused() -> None:
    m = _manifest([100])
    other = Pointer(hashlib.sha256(b"other").hexdigest(), 100)
    assert "another object" in _reject(m.encode(), other)
    assert "another object" in _reject(m.encode(), Pointer(m.oid, 101))


def _resign(body: bytes) -> bytes:
    return body + hashlib.sha256(body).digest()


def test_bad_pack_index_and_lengths_are_refused_even_with_a_valid_checksum() -> None:
    m = _manifest([100])
    body = bytearray(m.encode()[:-32])
    record = 56 + 32
    struct.pack_into("<I", body, record + 32, 5)  # pack index out of range
    assert "names no pack" in _reject(_resign(bytes(body)), m.pointer)
    body = bytearray(m.encode()[:-32])
    struct.pack_into("<I", body, record + 44, 99)  # raw chunk whose stored length differs
    assert "impossible lengths" in _reject(_resign(bytes(body)), m.pointer)
    body = bytearray(m.encode()[:-32])
    struct.pack_into("<I", body, 52, 7)  # chunk count lies
    assert "length" in _reject(_resign(bytes(body)), m.pointer)


@given(st.binary(max_size=400))
def test_decode_never_raises_anything_but_integrity_error(data: bytes) -> None:
    pointer = Pointer(hashlib.sha256(b"object").hexdigest(), 10)
    try:
        decode(data, pointer)
    except IntegrityError:
        pass


@given(st.lists(st.integers(min_value=1, max_value=262144), max_size=20))
def test_round_trip_any_chunk_sizes(sizes: list[int]) -> None:
    m = _manifest(sizes, [PACK_A, PACK_B])
    assert decode(m.encode(), m.pointer) == m


def test_codec_compresses_only_when_it_pays() -> None:
    text = b"lorem ipsum dolor " * 4000
    kind, stored = codec.encode(text)
    assert kind == CODEC_ZSTD and len(stored) < len(text) // 4
    assert bytes(codec.decode(kind, stored, len(text))) == text
    noise = os.urandom(65536)
    kind, stored = codec.encode(noise)
    assert kind == CODEC_RAW and bytes(stored) == noise


def test_codec_rejects_damaged_or_wrong_length_frames() -> None:
    text = b"abc" * 10000
    kind, stored = codec.encode(text)
    with pytest.raises(IntegrityError):
        codec.decode(kind, stored, len(text) - 1)
    with pytest.raises(IntegrityError):
        codec.decode(kind, b"\x00" + bytes(stored)[1:], len(text))
