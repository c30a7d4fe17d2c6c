"""How a writer names a pack it builds (docs/storage-format.md, "Pack ids").

Owns: the table id, the name a format 2 writer gives a pack: the SHA-256 of the list of
its stored chunks' SHA-256 and lengths. It commits to every byte of the pack just as the
SHA-256 of the bytes does (a stored chunk's hash fixes its bytes), but a writer knows it
without reading the pack again: a raw chunk's stored hash is its chunk hash, known from
chunking (for a one-chunk object, its oid), and only compressed chunks, already in
memory, are hashed once more. Format 1 writers name a pack by the SHA-256 of its bytes.
Must not: do I/O.
"""

from __future__ import annotations

import hashlib

from gitmlx.format.manifest import CODEC_RAW

#: What a table id's hash input starts with (keeps it apart from any pack's own bytes).
TABLE_TAG = b"gitmlx pack table 1\n"


class TableId:
    """The table id of a pack, fed each stored chunk in pack order."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256(TABLE_TAG)

    def add(self, stored_hash: bytes, stored_length: int) -> None:
        self._digest.update(stored_hash + stored_length.to_bytes(8, "little"))

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def stored_hash(codec: int, chunk_hash: bytes, stored: bytes | memoryview) -> bytes:
    """SHA-256 of a chunk's stored bytes: its chunk hash when stored raw (the bytes are
    the chunk's), else hashed here (a compressed chunk: a fraction of the raw bytes)."""
    if codec == CODEC_RAW:
        return chunk_hash
    return hashlib.sha256(stored).digest()
