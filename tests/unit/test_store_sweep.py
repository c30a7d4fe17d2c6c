"""Store.sweep_tmp: what killed writers left in the store's temporary folders goes once it
is a day old; anything a live writer may still use stays."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from gitmlx.store import packs as store_packs
from gitmlx.store.objects import TMP_MAX_AGE, Store

OLD = time.time() - TMP_MAX_AGE - 60


def aged(path: Path, data: bytes = b"x" * 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


def test_old_leftovers_go_and_recent_files_stay(store: Store) -> None:
    upload_pack = aged(store.tmp_dir / "pack-123-0123456789abcdef", b"u" * 5000)
    half_object = aged(store.tmp_dir / "obj-123-0123456789abcdef", b"o" * 700)
    recent = store.tmp_dir / "pack-456-0123456789abcdef"
    recent.write_bytes(b"still being written")

    removed, freed = store.sweep_tmp()

    assert (removed, freed) == (2, 5700)
    assert not upload_pack.exists() and not half_object.exists()
    assert recent.exists()


def test_a_store_pack_whose_writer_holds_its_lock_stays(store: Store) -> None:
    header = store_packs.HEADER.pack(store_packs.MAGIC, store_packs.VERSION, 0)
    alive = aged(store.tmp_dir / f"{store_packs.ORPHAN_PREFIX}0123456789abcdef", header)
    starting = aged(store.tmp_dir / f".new-{store_packs.ORPHAN_PREFIX}fedcba9876543210", b"")
    holders = [os.open(alive, os.O_RDONLY), os.open(starting, os.O_RDONLY)]
    try:
        for fd in holders:
            fcntl.flock(fd, fcntl.LOCK_EX)  # another open file description: as another process

        assert store.sweep_tmp() == (0, 0)
        assert alive.exists() and starting.exists()
    finally:
        for fd in holders:
            os.close(fd)

    store.sweep_tmp()  # the writers are gone now
    assert not starting.exists()
    assert not alive.exists()  # an empty orphan: recovered (nothing to keep), then removed


def test_a_scratch_store_goes_only_when_nothing_in_it_is_recent(store: Store) -> None:
    old_scratch = store.tmp_dir / "fsck-1-aaaa"
    aged(old_scratch / "objects" / "ab" / "cd" / "x", b"y" * 10)
    os.utime(old_scratch / "objects" / "ab" / "cd", (OLD, OLD))
    os.utime(old_scratch / "objects" / "ab", (OLD, OLD))
    os.utime(old_scratch / "objects", (OLD, OLD))
    os.utime(old_scratch, (OLD, OLD))
    busy_scratch = store.tmp_dir / "fsck-2-bbbb"
    aged(busy_scratch / "objects" / "old", b"z")
    (busy_scratch / "objects" / "new").write_bytes(b"being checked")
    os.utime(busy_scratch, (OLD, OLD))

    removed, freed = store.sweep_tmp()

    assert (removed, freed) == (1, 10)
    assert not old_scratch.exists()
    assert (busy_scratch / "objects" / "new").exists()


def test_nothing_to_sweep_in_a_fresh_store(tmp_path: Path) -> None:
    assert Store(tmp_path / "nothing-here").sweep_tmp() == (0, 0)
