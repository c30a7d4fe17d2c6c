"""Test helpers for the local store: damaging objects where they are stored."""

from __future__ import annotations

import os
from pathlib import Path

from gitmlx import store_packs
from gitmlx.store import Store


def corrupt_in_pack(store: Store, oid: str, data: bytes) -> Path:
    """Overwrite `oid`'s bytes inside its (finished) pack with `data`, same length; the pack."""
    for path in store.packs_dir.glob("*" + store_packs.SUFFIX):
        pack = store_packs.PackFile(path)
        try:
            found = pack.find(oid)
        finally:
            pack.close()
        if found is not None:
            offset, size = found
            assert len(data) == size, "a packed object's size is in the pack index"
            os.chmod(path, 0o644)
            with open(path, "r+b") as f:
                f.seek(offset)
                f.write(data)
            return path
    raise AssertionError(f"{oid} is in no pack")
