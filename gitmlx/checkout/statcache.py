"""The stat cache: which work-tree files gitmlx itself wrote, and with what content.

Owns: `<git-dir>/mlx-statcache.sqlite` (per worktree: paths and inodes are).
When gitmlx places a file (checkout, pull, the post-checkout hook), it records the file's
(device, inode, size, mtime_ns, ctime_ns) and the pointer text of what it wrote. When git
later runs the clean filter on that path (a `git status`, an index refresh), an *exact*
match of all five means the file is untouched since: clean can answer with the recorded
pointer without hashing. Any write to the file changes its ctime, so a stale entry never
matches. Must not: be trusted for anything but that exact match, or load sqlite before
a cache is opened (a clean in a repository that has none never needs it).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

FILE_NAME = "mlx-statcache.sqlite"


def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class StatCache:
    def __init__(self, git_dir: Path) -> None:
        self.path = git_dir / FILE_NAME
        self._db: sqlite3.Connection | None = None

    def _conn(self, create: bool) -> sqlite3.Connection | None:
        if self._db is None:
            if not create and not self.path.exists():
                return None
            import sqlite3

            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER,"
                " size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, pointer BLOB) WITHOUT ROWID"
            )
            self._db = db
        return self._db

    def record(self, path: str, st: os.stat_result, pointer_text: bytes) -> None:
        db = self._conn(create=True)
        assert db is not None
        db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", (path, *_key(st), pointer_text))

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group many `record`s into one transaction (one commit, not one per file)."""
        db = self._conn(create=True)
        assert db is not None
        db.execute("BEGIN")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def lookup(self, path: str, st: os.stat_result) -> bytes | None:
        """The pointer text recorded for `path`, only if its stat data is exactly the same."""
        db = self._conn(create=False)
        if db is None:
            return None
        row = db.execute(
            "SELECT dev, ino, size, mtime_ns, ctime_ns, pointer FROM files WHERE path = ?", (path,)
        ).fetchone()
        if row is None or tuple(row[:5]) != _key(st):
            return None
        return bytes(row[5])

    def untouched(self, work_tree: Path, path: str) -> bytes | None:
        """The pointer text recorded for the work-tree file `path`, if it is exactly as
        gitmlx left it."""
        try:
            st = os.lstat(work_tree / path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return self.lookup(path, st)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
