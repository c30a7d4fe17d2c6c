"""Sweeping the store's temporary folders: what killed writers left behind.

Owns: deciding which entries of a temporary folder are leftovers (untouched for long
enough, a scratch store nobody writes to any more, a store pack whose writer is gone) and
removing them.
Must not: recover the objects of unfinished store packs (the pack set does that first),
touch objects under their final names, talk to a remote, run git, or print.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path

from gitmlx.store import packs as store_packs


def sweep_tmp_dirs(folders: Iterable[Path], older_than: float, others: tuple[str, ...] = ()) -> tuple[int, int]:
    """Delete the entries of `folders` untouched for `older_than` seconds, except a store
    pack whose writer still holds its lock (or where locks do not work), and names starting
    with one of `others` (another owner's files in a shared folder). Returns (entries
    removed, bytes freed)."""
    cutoff = time.time() - older_than
    removed = freed = 0
    for folder in folders:
        try:
            entries = [e for e in os.scandir(folder) if not (others and e.name.startswith(others))]
        except OSError:
            continue
        for entry in entries:
            try:
                size = _remove_if_stale(entry, cutoff)
            except OSError:
                continue  # gone meanwhile, or not ours to remove
            if size is not None:
                removed += 1
                freed += size
    return removed, freed


def _remove_if_stale(entry: os.DirEntry[str], cutoff: float) -> int | None:
    """Remove `entry` if nothing touched it since `cutoff`: the bytes freed, or None when
    it stays."""
    st = entry.stat(follow_symlinks=False)
    if st.st_mtime > cutoff:
        return None
    if entry.is_dir(follow_symlinks=False):
        size, newest = _tree_stats(entry.path)
        if newest > cutoff:
            return None  # a scratch store still in use
        shutil.rmtree(entry.path)
        return size
    if entry.name.lstrip(".").removeprefix("new-").startswith(store_packs.ORPHAN_PREFIX) and not (
        store_packs.writer_gone(Path(entry.path))
    ):
        return None
    os.unlink(entry.path)
    return st.st_size


def _tree_stats(path: str) -> tuple[int, float]:
    """Bytes under a folder, and the newest mtime of anything in it."""
    total, newest = 0, 0.0
    for folder, _, names in os.walk(path):
        with contextlib.suppress(OSError):
            newest = max(newest, os.lstat(folder).st_mtime)
        for name in names:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(folder, name))
                total += st.st_size
                newest = max(newest, st.st_mtime)
    return total, newest
