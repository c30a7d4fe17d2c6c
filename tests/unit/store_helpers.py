"""Test helpers for the local store: damaging objects where they are stored."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from gitmlx.store import packs as store_packs
from gitmlx.store.objects import Store


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


@contextlib.contextmanager
def opened_pack(path: Path) -> Iterator[store_packs.PackFile]:
    pack = store_packs.PackFile(path)
    try:
        yield pack
    finally:
        pack.close()


def corrupt_in_pack(store: Store, oid: str, data: bytes) -> Path:
    """Overwrite `oid`'s bytes inside its (finished) pack with `data`, same length; the pack."""
    for path in store.packs_dir.glob("*" + store_packs.SUFFIX):
        with opened_pack(path) as pack:
            found = pack.find(oid)
        if found is not None:
            offset, size = found
            assert len(data) == size, "a packed object's size is in the pack index"
            os.chmod(path, 0o644)
            with open(path, "r+b") as f:
                f.seek(offset)
                f.write(data)
            return path
    raise AssertionError(f"{oid} is in no pack")
