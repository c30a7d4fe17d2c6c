"""The storage spec's chunking section is complete: a chunker written from it alone
(tests/spec_reader/chunker.py) cuts the same chunks as gitmlx, so another writer dedups
against gitmlx's pushes.
"""

from __future__ import annotations

import hashlib
import io
import random

from gitmlx.format.chunking import chunks, one_chunk
from tests.spec_reader import chunker

KIB = 1024


def _gitmlx_cuts(data: bytes) -> list[int]:
    ends, pos = [], 0
    for view in chunks(io.BytesIO(data)):
        pos += len(view)
        ends.append(pos)
    return ends


def test_gear_table_matches_the_digest_the_spec_states() -> None:
    table = chunker.gear_table()
    digest = hashlib.sha256(b"".join(g.to_bytes(8, "big") for g in table)).hexdigest()
    text = chunker.SPEC.read_text(encoding="utf-8")
    assert digest in text and f"{table[0]:#018x}" in text and f"{table[255]:#018x}" in text


def test_chunker_from_the_spec_cuts_where_gitmlx_does() -> None:
    rng = random.Random(18)
    # Random bytes (ordinary cuts), a long run of one byte (no cut: MAX-sized chunks), text
    # (a different byte distribution), and an odd-sized tail shorter than MAX.
    data = (
        rng.randbytes(1536 * KIB)
        + bytes(600 * KIB)
        + b"".join(rng.choice((b"alpha ", b"beta ", b"gamma\n")) for _ in range(60_000))
        + rng.randbytes(150 * KIB + 1)
    )
    ours = list(chunker.cut_points(data))
    assert ours == _gitmlx_cuts(data)
    sizes = [b - a for a, b in zip([0, *ours], ours, strict=False)]
    assert 262144 in sizes and len(sizes) > 20  # the MAX rule was exercised, and many cuts


def test_short_and_empty_inputs() -> None:
    for size in (0, 1, 16 * KIB, 16 * KIB + 1, 16 * KIB + 2, 70 * KIB + 1):
        data = random.Random(size).randbytes(size)
        assert list(chunker.cut_points(data)) == _gitmlx_cuts(data), size


def test_an_object_up_to_max_is_one_chunk_as_the_spec_says() -> None:
    for size in (0, 1, 70 * KIB + 1, 256 * KIB, 256 * KIB + 1, 300 * KIB):
        data = random.Random(size).randbytes(size)
        gitmlx = [size] if one_chunk(size) else _gitmlx_cuts(data)
        assert chunker.object_cuts(data) == gitmlx, size
