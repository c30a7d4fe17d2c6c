"""Codec 2 (byte-grouped chunks) through the reader written from docs/storage-format.md:
chunks gitmlx encodes at every width, phase and odd length, the doc's own example, and a
remote gitmlx pushed with byte grouping on, rebuilt object by object.

gitmlx writes codec 2 only to remotes of format 2 (a new remote is one); a reader of
format 1 alone must refuse it.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from pathlib import Path

import pytest

from gitmlx.format import codec
from gitmlx.format.manifest import CODEC_GROUPED
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.transfer.upload import upload
from tests.spec_reader import reader
from tests.support.content import float_bytes

KIB = 1024


def _chunk(codec_id: int, raw: bytes, stored: bytes) -> reader.Chunk:
    return reader.Chunk(hashlib.sha256(raw).digest(), "0" * 64, 0, len(stored), len(raw), codec_id)


def test_the_docs_example_decodes() -> None:
    stored = bytes.fromhex("04 02000000 02000000 02000000 02000000 0809 0004 0105 0206 0307")
    assert reader.decode_chunk(_chunk(2, bytes(range(10)), stored), stored) == bytes(range(10))


@pytest.mark.parametrize("kind", ["e", "bf16", "f", "d"])
def test_gitmlx_chunks_decode_at_every_width_phase_and_length(kind: str) -> None:
    rng = random.Random(kind)
    source = float_bytes(12 * KIB, kind, kind)
    seen = 0
    for width in codec.WIDTHS:
        for phase in range(8):
            length = rng.randint(width, 9 * KIB)
            raw = source[phase : phase + length]
            stored = codec.group(raw, width)
            assert stored is not None
            assert reader.decode_chunk(_chunk(2, raw, stored), stored) == raw
            kept, _ = codec.encode(raw, width)
            seen += kept == CODEC_GROUPED
    assert seen, "some of these chunks should have been worth grouping"


def test_the_reader_refuses_a_plane_length_past_n() -> None:
    raw = float_bytes(1000, "x")
    stored = bytearray(codec.group(raw, 4) or b"")
    stored[1:5] = (1001).to_bytes(4, "little")
    with pytest.raises(reader.SpecError):
        reader.decode_chunk(_chunk(2, raw, bytes(stored)), bytes(stored))


def test_reader_from_the_spec_rebuilds_a_remote_with_byte_grouped_objects(tmp_path: Path) -> None:
    fp32 = float_bytes(200_000, "w")
    contents = {
        "empty": b"",
        "tiny": b"hi\n",
        "fp32": fp32,
        "fp16": float_bytes(150_000, "h", "e")[1:],  # starts inside an element
        "bf16": float_bytes(60_000, "b", "bf16"),
        "fp64": float_bytes(40_000, "d", "d") + b"odd",
        "text": b"lorem ipsum dolor sit amet " * 10_000,
        "noise": os.urandom(300 * KIB),
        "header+fp32": b'{"weights": "fp32"}' + fp32[:400_000],
    }
    store = Store(tmp_path / "store")
    pointers = {name: store.insert_stream(io.BytesIO(data)) for name, data in contents.items()}
    store.sync()
    root = tmp_path / "remote"
    result = upload(store, LocalRemote(root), list(pointers.values()), concurrency=2)
    assert result.ok, result.failed

    grouped = set()
    for name, pointer in pointers.items():
        data = reader.read_object(root, pointer.oid, pointer.size)
        assert data == contents[name]
        manifest = reader.parse_manifest(
            reader.find_manifest(root, pointer.oid), pointer.oid, pointer.size, reader.CODECS[2]
        )
        if any(c.codec == 2 for c in manifest.chunks):
            grouped.add(name)
    assert grouped == {"fp32", "fp16", "bf16", "fp64", "header+fp32"}
    with pytest.raises(reader.SpecError, match="unknown codec 2"):
        reader.read_object(root, pointers["fp32"].oid, codecs=reader.CODECS[1])  # as format 1 reads
