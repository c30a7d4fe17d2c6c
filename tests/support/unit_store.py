"""Helpers for the unit tests that drive gitmlx's `Store` in this process.

Owns: storing an object loose whatever its size, reading an object back, opening a store
pack with gitmlx's own reader (the code under test), and damaging an object inside its
finished pack (found with tests/support/formats.py's reader, not gitmlx's).
Must not: be used by tests that run git: they look at the store from the outside only
(tests/support/stores.py).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from gitmlx.format.pointer import Pointer
from gitmlx.store import packs as store_packs
from gitmlx.store.objects import Store
from tests.support.formats import STORE_PACK_SUFFIX, parse_store_pack


def put_loose(store: Store, data: bytes) -> Pointer:
    """Store `data` as a loose object (a file of its own) whatever its size."""
    with store.writer(loose=True) as writer:
        writer.write(data)
        return writer.commit()


def read_object(store: Store, oid: str) -> bytes:
    with store.open(oid) as f:
        return f.read()


@contextlib.contextmanager
def opened_pack(path: Path) -> Iterator[store_packs.PackFile]:
    pack = store_packs.PackFile(path)
    try:
        yield pack
    finally:
        pack.close()


def corrupt_in_pack(store: Store, oid: str, data: bytes) -> Path:
    """Overwrite `oid`'s bytes inside its (finished) pack with `data`, same length; the pack."""
    for path in store.packs_dir.glob("*" + STORE_PACK_SUFFIX):
        entries = {raw.hex(): (offset, size) for raw, offset, size in parse_store_pack(path.read_bytes()).entries}
        if oid in entries:
            offset, size = entries[oid]
            assert len(data) == size, "a packed object's size is in the pack index"
            os.chmod(path, 0o644)
            with open(path, "r+b") as f:
                f.seek(offset)
                f.write(data)
            return path
    raise AssertionError(f"{oid} is in no pack")
