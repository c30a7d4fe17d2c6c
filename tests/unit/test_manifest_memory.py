"""A manifest's memory is bounded by its size (#21 item 10): decoded, walked and recorded
in the chunk index, a manifest of 400,000 chunks costs about its own bytes, not the
several times its size that one Python object per chunk cost (a 106 MB manifest once
took 764 MB, and the 1 GiB limit applies per concurrent download)."""

from __future__ import annotations

import hashlib
import os
import struct
import tracemalloc
from array import array
from pathlib import Path

from gitmlx.format.manifest import MAGIC, decode
from gitmlx.format.pointer import Pointer
from gitmlx.store.chunk_index import ChunkIndex
from gitmlx.transfer.rebuild import Taken, remember

CHUNKS = 400_000
RAW = 16 * 1024


def big_manifest() -> tuple[bytes, Pointer]:
    oid = hashlib.sha256(b"big").digest()
    size = CHUNKS * RAW
    pack = hashlib.sha256(b"pack").digest()
    record = struct.Struct("<32sIQIIB")
    digests = os.urandom(32 * CHUNKS)
    body = bytearray(struct.pack("<8s32sQII", MAGIC, oid, size, 1, CHUNKS) + pack)
    for i in range(CHUNKS):
        body += record.pack(digests[32 * i : 32 * i + 32], 0, i * RAW, RAW, RAW, 0)
    body += hashlib.sha256(body).digest()
    return bytes(body), Pointer(oid.hex(), size)


def test_a_large_manifest_costs_about_its_own_size(tmp_path: Path) -> None:
    data, pointer = big_manifest()
    index = ChunkIndex(tmp_path / "index.sqlite")
    tracemalloc.start()
    try:
        manifest = decode(data, pointer)
        assert sum(c.raw for c in manifest.chunks) == pointer.size  # every record walked
        taken = Taken(fetched=array("l", range(CHUNKS)))
        remember(index, "dir:/r", manifest, taken)
        index.flush()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        index.close()
    assert peak < 0.5 * len(data) + 16 * 1024 * 1024, (
        f"peak {peak / 2**20:.1f} MiB for a {len(data) / 2**20:.1f} MiB manifest"
    )
