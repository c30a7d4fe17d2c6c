"""Work-tree copies as chunk sources, for thin checkouts (`mlx.thin`).

In a thin checkout the work-tree file is the only local copy of an artifact, and git
unlinks that file before it asks the filter for the next version's content (entry.c,
`checkout_entry_ca`), so the bytes a new version shares with the old one would be gone by
the time they are needed. Each large file a thin placement puts in the work tree is
therefore also hard-linked here, as `<git-dir>/mlx-thin/<oid>`: no extra bytes on disk
while the work-tree name lives, and the old inode survives git's unlink until the
checkout that replaced it has taken its chunks.

A link shares the work-tree file's inode, so an edit in place changes it too: its bytes
are never trusted. They are read only as chunk sources, each chunk hashed against the
chunk hash its manifest names before it is used (transfer/rebuild.py), and never as an
object. A link whose work-tree name is gone (link count 1) is dropped at the end of each
thin checkout and by `git mlx prune`.

Owns: that folder, adding a link for a placed file, opening one, and sweeping the
orphans. Must not: decide what is placed, trust the bytes, or print.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from gitmlx.format.pointer import is_valid_oid

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from typing import BinaryIO

#: The folder, in the git dir (per worktree: beside the files it links to).
LINKS_DIR = "mlx-thin"
#: Objects smaller than this get no link: they are fetched whole anyway (transfer/batch.py).
LINK_FROM = 2 * 1024 * 1024


class WorktreeLinks:
    """The folder of links to work-tree files that held a verified object when placed."""

    def __init__(self, git_dir: Path | str) -> None:
        self.folder = os.path.join(git_dir, LINKS_DIR)

    def _name(self, oid: str) -> str:
        if not is_valid_oid(oid):
            raise ValueError(f"refusing invalid oid {oid!r}")
        return os.path.join(self.folder, oid)

    def add(self, oid: str, placed: str, st: os.stat_result) -> os.stat_result:
        """Link the work-tree file `placed` (stat data `st`, just placed with `oid`'s
        verified bytes) as `oid`'s chunk source; the file's stat data afterwards. Making
        the link changes the file's ctime, which git compares with its index: record the
        returned stat data, not `st`. Best effort: a file system without hard links, or a
        folder on another one, only costs the incremental fetch (`st` comes back)."""
        if st.st_size < LINK_FROM:
            return st
        name = self._name(oid)
        tmp = f"{name}.{os.getpid()}.tmp"
        try:
            os.makedirs(self.folder, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.link(placed, tmp, follow_symlinks=False)
            now = os.lstat(tmp)
            # The inode number alone could be a new file's (a freed number is reused at once).
            if _identity(now) != _identity(st):
                os.unlink(tmp)  # replaced since it was placed: not the object's file
                return st
            os.replace(tmp, name)  # sets the inode's ctime again
            linked = os.lstat(name)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            return st
        return linked if _identity(linked) == _identity(st) else st

    def open(self, oid: str) -> BinaryIO | None:
        """The linked file, to read chunks from (unverified bytes), or None."""
        try:
            return open(self._name(oid), "rb")  # noqa: SIM115 - the caller closes it
        except (OSError, ValueError):
            return None

    def has(self, oid: str) -> bool:
        try:
            return os.path.isfile(self._name(oid))
        except ValueError:
            return False

    def sweep(self) -> int:
        """Drop the links whose work-tree name is gone (nobody else links the inode) and
        leftovers of killed links; the bytes that frees."""
        freed = 0
        try:
            names = os.listdir(self.folder)
        except OSError:
            return 0
        for name in names:
            path = os.path.join(self.folder, name)
            try:
                st = os.lstat(path)
                stale_tmp = name.endswith(".tmp") and not _writer_alive(name)
                if stale_tmp or (is_valid_oid(name) and stat.S_ISREG(st.st_mode) and st.st_nlink <= 1):
                    os.unlink(path)
                    freed += st.st_blocks * 512 if st.st_nlink <= 1 else 0
            except OSError:
                continue
        return freed

    def linked(self) -> dict[str, os.stat_result]:
        """Every link's oid and stat data (for `du`)."""
        found: dict[str, os.stat_result] = {}
        try:
            names = os.listdir(self.folder)
        except OSError:
            return found
        for name in names:
            if is_valid_oid(name):
                with contextlib.suppress(OSError):
                    found[name] = os.lstat(os.path.join(self.folder, name))
        return found


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _writer_alive(name: str) -> bool:
    parts = name.split(".")
    if len(parts) < 3 or not parts[-2].isdigit():
        return False
    try:
        os.kill(int(parts[-2]), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
