"""sqlite files that are only caches (the chunk index, the stat cache): opened so that
concurrent processes and damage cost the cache, never the command.

Owns: opening such a file (WAL, a busy timeout, the schema), and starting it over when it
is damaged: the bad file is moved aside (`<name>.damaged-<pid>`, kept for inspection) and
an empty one takes its place, with one warning.
Must not: know what the caller stores.

Two quirks handled here. `PRAGMA journal_mode=WAL` needs a lock that sqlite does not wait
for with its busy handler, so two processes opening a new file at once could fail with
"database is locked" although the timeout was set (the pragma is skipped when the file is
already in WAL mode, and retried a bounded number of times otherwise). And a file
overwritten or cut short may open fine and fail only at the first statement, as
`sqlite3.DatabaseError`: that is when it is moved aside.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

# Not typing.TYPE_CHECKING: the filter may load this module, and typing costs its start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

#: How often to retry the WAL switch while another process holds the lock it needs.
WAL_ATTEMPTS = 50
WAL_PAUSE = 0.05


def _set_wal(db: sqlite3.Connection) -> None:
    for attempt in range(WAL_ATTEMPTS):
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(WAL_PAUSE)  # another process is switching the same file right now


def _connect(path: Path, schema: str, timeout: float) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
    try:
        _set_wal(db)
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db


def open_cache(
    path: Path, schema: str, timeout: float = 60, warn: Callable[[str], None] | None = None
) -> sqlite3.Connection:
    """A connection to the cache at `path` (created if missing). A file damaged at its
    start is moved aside and replaced by an empty one; `warn` hears about it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _connect(path, schema, timeout)
    except sqlite3.DatabaseError as exc:
        if is_busy(exc):
            raise
        return start_over(path, schema, exc, timeout, warn)


def is_busy(exc: sqlite3.DatabaseError) -> bool:
    """A lock another process holds past the timeout: not damage."""
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def start_over(
    path: Path,
    schema: str,
    reason: BaseException,
    timeout: float = 60,
    warn: Callable[[str], None] | None = None,
) -> sqlite3.Connection:
    """Move a damaged cache aside and open an empty one in its place. For damage found
    after opening too (a file cut short fails only when a query reaches the lost pages);
    the caller closes its old connection first."""
    aside = path.with_name(f"{path.name}.damaged-{os.getpid()}")
    for suffix in ("", "-wal", "-shm"):
        try:
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        except FileNotFoundError:
            pass
    if warn is not None:
        warn(f"'{path}' was damaged ({reason}); moved to '{aside.name}' and started empty (it is only a cache)")
    return _connect(path, schema, timeout)


class CacheFile:
    """One cache database, opened on first use, whose every statement goes through `run`:
    damage found at any point (a query reaching pages a cut-short file lost) starts the
    file over once and repeats the statement on the empty one.

    `prepare` runs on each fresh connection (schema upgrades); `started_over` is told
    when the contents were dropped, so the owner can forget what it knew about them."""

    def __init__(
        self,
        path: Path,
        schema: str,
        timeout: float = 60,
        warn: Callable[[str], None] | None = None,
        prepare: Callable[[sqlite3.Connection], None] | None = None,
        started_over: Callable[[], None] | None = None,
    ) -> None:
        self.path, self._schema, self._timeout, self._warn = path, schema, timeout, warn
        self._prepare, self._started_over = prepare, started_over
        self._db: sqlite3.Connection | None = None

    def connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_cache(self.path, self._schema, self._timeout, self._warn)
            try:
                if self._prepare is not None:
                    self._prepare(db)
            except sqlite3.DatabaseError as exc:
                db.close()
                if is_busy(exc):
                    raise
                db = self._start_over(exc)
            self._db = db
        return self._db

    def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return work(self.connection())
        except sqlite3.DatabaseError as exc:
            if is_busy(exc) or self._db is None:
                raise
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            self._db.close()
            self._db = self._start_over(exc)
            return work(self._db)

    def _start_over(self, reason: BaseException) -> sqlite3.Connection:
        db = start_over(self.path, self._schema, reason, self._timeout, self._warn)
        if self._prepare is not None:
            self._prepare(db)
        if self._started_over is not None:
            self._started_over()
        return db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
