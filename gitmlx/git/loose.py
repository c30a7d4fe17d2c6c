"""Reading one small blob from git's loose objects, without starting git.

Owns: `objects/<2 hex>/<rest>` in the common dir: zlib data of `blob <size>\\0<content>`
(gitformat-loose(5)), checked against its object id before it is believed.
Must not: read packs (anything not loose is for `git cat-file`), or anything large: the
filter asks this for pointer-sized blobs only, right after `git add` wrote them loose.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from gitmlx.osutil import digests


def read_small_blob(common_dir: Path, oid: bytes, object_format: str, limit: int) -> bytes | None:
    """The content of blob `oid` if it is a loose object of at most `limit` bytes whose
    data hashes to `oid`; None otherwise (packed, larger, not a blob, damaged)."""
    name = oid.hex()
    try:
        with open(common_dir / "objects" / name[:2] / name[2:], "rb") as f:
            compressed = f.read(limit + 4096)
    except OSError:
        return None
    try:
        data = zlib.decompressobj().decompress(compressed, limit + 64)
    except zlib.error:
        return None
    header, nul, content = data.partition(b"\0")
    if not nul or not header.startswith(b"blob "):
        return None
    size = header[5:]
    if not size.isdigit() or int(size) != len(content) or len(content) > limit:
        return None
    if digests.new(object_format, data).digest() != oid:
        return None
    return content
