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
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the filter imports this module

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable

    from gitmlx.osutil.cachedb import CacheFile

FILE_NAME = "mlx-statcache.sqlite"


def _key(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


#: Paths are bytes (as git has them): a file name that is not UTF-8 is still a file name.
#: The first version keyed TEXT (`files`), which such a name made fail: it is dropped.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (path BLOB PRIMARY KEY, dev INTEGER, ino INTEGER,
    size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, pointer BLOB) WITHOUT ROWID;
"""


def _drop_old_table(db: sqlite3.Connection) -> None:
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'files'").fetchone():
        db.execute("DROP TABLE IF EXISTS files")


def _encode(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


class StatCache:
    """A damaged file is moved aside and started over (osutil.cachedb)."""

    def __init__(self, git_dir: Path, warn: Callable[[str], None] | None = None) -> None:
        self.path = git_dir / FILE_NAME
        self._warn = warn
        self._file: CacheFile | None = None
        #: No cache file was there when first looked for: lookups find nothing until this
        #: process records one. (Another process's new cache is not seen: a miss only
        #: means cleaning the file, the answer the cache would have saved.)
        self._absent = False

    def _cache(self, create: bool) -> CacheFile | None:
        if self._file is None:
            if not create and (self._absent or not self.path.exists()):
                self._absent = True
                return None
            from gitmlx.osutil.cachedb import CacheFile  # sqlite loads only with a cache

            self._file = CacheFile(self.path, _SCHEMA, 30, self._warn, _drop_old_table)
        return self._file

    def record(self, path: str, st: os.stat_result, pointer_text: bytes) -> None:
        cache = self._cache(create=True)
        assert cache is not None
        row = (_encode(path), *_key(st), pointer_text)
        cache.run(lambda db: db.execute("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?)", row))

    def record_many(self, files: Iterable[tuple[str, os.stat_result, bytes]]) -> None:
        """`record` for many files, a thousand rows to a statement (a row at a time cost
        a clone of 20,000 files ~0.3 s); a thousand rows at most in memory at once."""
        cache = self._cache(create=True)
        assert cache is not None
        rows: list[tuple[object, ...]] = []
        for path, st, pointer_text in files:
            rows.append((_encode(path), *_key(st), pointer_text))
            if len(rows) >= 1000:
                self._insert(cache, rows)
                rows = []
        if rows:
            self._insert(cache, rows)

    @staticmethod
    def _insert(cache: CacheFile, rows: list[tuple[object, ...]]) -> None:
        cache.run(lambda db: db.executemany("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?)", rows))

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Group many `record`s into one transaction (one commit, not one per file)."""
        cache = self._cache(create=True)
        assert cache is not None
        db = cache.connection()
        db.execute("BEGIN")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def lookup(self, path: str, st: os.stat_result) -> bytes | None:
        """The pointer text recorded for `path`, only if its stat data is exactly the same."""
        cache = self._cache(create=False)
        if cache is None:
            return None
        row = cache.run(
            lambda db: db.execute(
                "SELECT dev, ino, size, mtime_ns, ctime_ns, pointer FROM entries WHERE path = ?", (_encode(path),)
            ).fetchone()
        )
        if row is None or tuple(row[:5]) != _key(st):
            return None
        return bytes(row[5])

    def untouched(self, work_tree: Path, path: str) -> bytes | None:
        """The pointer text recorded for the work-tree file `path`, if it is exactly as
        gitmlx left it."""
        if self._cache(create=False) is None:
            return None  # nothing recorded: no need to stat the file (an add in a new repo)
        try:
            st = os.lstat(work_tree / path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return self.lookup(path, st)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
