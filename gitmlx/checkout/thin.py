"""What a work tree holds, for thin checkouts (`mlx.thin`): which artifacts are checked
out whole, and so need no store copy where the remote holds them.

Owns: telling, for each pointer in the index, whether its work-tree file holds exactly the
object (an exact stat-cache match, else the file hashed to its oid), and the summary
`git mlx du` shows of where artifacts are.
Must not: delete anything (prune decides, with the remote's answer), fetch or print.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.checkout.statcache import StatCache
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError
from gitmlx.git.scan import TrackedFile
from gitmlx.store.objects import BLOCK_SIZE


@dataclass
class Held:
    """A work-tree file that holds its object's bytes exactly."""

    tracked: TrackedFile
    stat: os.stat_result


def held_in_work_tree(ctx: RepoContext, files: Iterable[TrackedFile]) -> dict[str, Held]:
    """The objects among `files` that a work-tree file holds whole, by oid: trusted on an
    exact stat-cache match (the file gitmlx placed or cleaned, unchanged), else hashed."""
    work_tree = ctx.paths.work_tree
    if work_tree is None:
        return {}
    found: dict[str, Held] = {}
    cache = StatCache(ctx.paths.git_dir)
    try:
        for tracked in files:
            oid = tracked.pointer.oid
            if oid in found:
                continue
            st = _regular(work_tree / tracked.path, tracked.pointer.size)
            if st is None:
                continue
            known = cache.lookup(tracked.path, st)
            if known is not None and known in _texts(tracked):
                found[oid] = Held(tracked, st)
            elif _hash(work_tree / tracked.path) == oid and _same(_regular(work_tree / tracked.path, st.st_size), st):
                found[oid] = Held(tracked, st)  # and not changed while it was read
    finally:
        cache.close()
    return found


def _texts(tracked: TrackedFile) -> tuple[bytes, bytes]:
    return tracked.pointer.encode(), tracked.pointer.as_mlx().encode()


def _regular(path: Path, size: int) -> os.stat_result | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) and st.st_size == size else None


def _same(now: os.stat_result | None, before: os.stat_result) -> bool:
    return now is not None and (now.st_ino, now.st_mtime_ns, now.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )


def _hash(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(BLOCK_SIZE):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def link_held(ctx: RepoContext, held: Iterable[Held]) -> None:
    """Make the work-tree files whose store copies went chunk sources for their next
    versions (`worktreelinks`), and drop links whose work-tree name is gone."""
    links, work_tree = ctx.store.worktree_links, ctx.paths.work_tree
    if links is None or work_tree is None:
        return
    from gitmlx.checkout.worktree import PlacedStat, refresh_index

    changed = {}
    for h in held:
        st = links.add(h.tracked.pointer.oid, str(work_tree / h.tracked.path), h.stat)
        if st is not h.stat:
            changed[h.tracked.path] = PlacedStat(h.tracked.pointer, st)
    links.sweep()
    # The links changed the files' ctime, which git compares with its index: without the
    # new stat data, the next `git status` would clean them again, and a clean in a thin
    # work tree stores the object, the copy prune has just dropped.
    try:
        refresh_index(work_tree, changed)
    except MlxError:
        pass  # git holds the index: its next status cleans them again, nothing is lost


@dataclass
class Whereabouts:
    """Where the index's artifacts are locally (`git mlx du`): bytes are objects' sizes."""

    #: In the local store (whether or not also checked out).
    in_store: list[TrackedFile] = field(default_factory=list)
    #: Checked out whole and not in the store: the work-tree file is the only local copy.
    work_tree_only: list[TrackedFile] = field(default_factory=list)
    #: Neither: a pointer, or a file changed since (fetched again when needed).
    nowhere: list[TrackedFile] = field(default_factory=list)

    @staticmethod
    def size(files: list[TrackedFile]) -> int:
        return sum(f.pointer.size for f in {f.pointer.oid: f for f in files}.values())


def whereabouts(ctx: RepoContext, files: list[TrackedFile]) -> Whereabouts:
    """Sort `files` (the index's artifacts) by where their bytes are."""
    result = Whereabouts()
    missing = []
    for tracked in files:
        (result.in_store if ctx.store.has(tracked.pointer.oid) else missing).append(tracked)
    held = held_in_work_tree(ctx, missing)
    for tracked in missing:
        (result.work_tree_only if tracked.pointer.oid in held else result.nowhere).append(tracked)
    return result
