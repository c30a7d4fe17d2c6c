"""A second implementation of the writer's chunking, from docs/storage-format.md,
"Chunking", alone: the parameters are read from that section's block and the gear table is
derived as it says, so the test comparing this with gitmlx checks the text itself.

Pure Python and slow (~1 s per MiB): a test oracle, not a chunker to use. It must not
import gitmlx or pyfastcdc.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

SPEC = Path(__file__).resolve().parents[2] / "docs" / "storage-format.md"
MASK64 = (1 << 64) - 1


def parameters(spec: Path = SPEC) -> dict[str, int]:
    """MIN, AVG, MAX, MASK_S and MASK_L as the Chunking section's block states them."""
    text = spec.read_text(encoding="utf-8")
    section = text[text.index("## Chunking") :]
    section = section[: section.index("\n## ", 1)]
    found = dict(re.findall(r"^(MIN|AVG|MAX|MASK_S|MASK_L)\s*=\s*(\S+)$", section, re.MULTILINE))
    assert set(found) == {"MIN", "AVG", "MAX", "MASK_S", "MASK_L"}, f"the spec's parameter block: {found}"
    return {name: int(value, 0) for name, value in found.items()}


def gear_table() -> list[int]:
    """GEAR[i]: the first 8 bytes, big-endian, of the MD5 of 64 bytes equal to i."""
    return [int.from_bytes(hashlib.md5(bytes([i]) * 64).digest()[:8], "big") for i in range(256)]


def object_cuts(data: bytes, params: dict[str, int] | None = None) -> list[int]:
    """The end offset of each chunk of an object whose bytes are `data`: one chunk up to MAX
    bytes, else `cut_points`."""
    p = params or parameters()
    if 0 < len(data) <= p["MAX"]:
        return [len(data)]
    return list(cut_points(data, p))


def cut_points(data: bytes, params: dict[str, int] | None = None) -> Iterator[int]:
    """The end offset of each chunk of `data`, cut by content, in order (also how the rest
    of a larger object is cut once some chunks are off it)."""
    p = params or parameters()
    gear = gear_table()
    lo, avg, hi, mask_s, mask_l = p["MIN"], p["AVG"], p["MAX"], p["MASK_S"], p["MASK_L"]
    start = 0
    while start < len(data):
        n = len(data) - start
        if n <= lo:
            yield len(data)
            return
        limit = min(n, hi)
        centre = 2 * (min(avg, limit) // 2)
        length = limit
        h = 0
        for i in range(lo, 2 * (limit // 2)):
            h = (2 * h + gear[data[start + i]]) & MASK64
            if not h & (mask_s if i < centre else mask_l):
                length = i
                break
        start += length
        yield start
