"""Which objects are known to be on each artifact remote: the record that lets a push
skip asking the remote about objects it has already confirmed there.

Owns: `remote-objects.sqlite` beside the local store (docs/local-store.md, "Remote
record"): one row per (remote identity, oid), with the size and the time the object was
last confirmed on that remote.
Must not: talk to a remote, or decide anything beyond "this existence check may be
skipped": a row is a cache entry, never proof. The caller (transfer/confirm.py) decides
how old a row may be and which rows a gc note makes untrustworthy.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from gitmlx.format.pointer import Pointer
from gitmlx.osutil.cachedb import CacheFile

FILE_NAME = "remote-objects.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS remote_objects (
    remote TEXT NOT NULL, oid TEXT NOT NULL, size INTEGER NOT NULL, confirmed INTEGER NOT NULL,
    PRIMARY KEY (remote, oid)) WITHOUT ROWID;
"""
_BATCH = 500


class RemoteRecord:
    """Thread-safe; every statement goes through a CacheFile, so a damaged file is moved
    aside and the record starts empty (costing existence checks, never correctness)."""

    def __init__(self, path: Path, warn: Callable[[str], None] | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = CacheFile(path, _SCHEMA, 60, warn)

    @classmethod
    def beside(cls, store_root: Path, warn: Callable[[str], None] | None = None) -> RemoteRecord:
        return cls(store_root / FILE_NAME, warn)

    def known(self, remote: str, pointers: Iterable[Pointer], since: int) -> set[str]:
        """The oids of `pointers` recorded on `remote` with the same size, confirmed at or
        after `since` (Unix seconds)."""
        wanted = {p.oid: p.size for p in pointers}
        keys = list(wanted)

        def select(db: sqlite3.Connection) -> list[tuple[str, int]]:
            rows: list[tuple[str, int]] = []
            for i in range(0, len(keys), _BATCH):
                batch = keys[i : i + _BATCH]
                marks = ",".join("?" * len(batch))
                rows += db.execute(
                    f"SELECT oid, size FROM remote_objects WHERE remote = ? AND confirmed >= ? AND oid IN ({marks})",
                    (remote, since, *batch),
                ).fetchall()
            return rows

        with self._lock:
            rows = self._file.run(select)
        return {oid for oid, size in rows if wanted.get(oid) == size}

    def add(self, remote: str, pointers: Iterable[Pointer], confirmed: int) -> None:
        """Record `pointers` as confirmed on `remote` at `confirmed` (Unix seconds): only
        for objects whose manifest this client wrote, or checked as intact, after reading
        the remote's gc notes (transfer/confirm.py)."""
        rows = [(remote, p.oid, p.size, confirmed) for p in pointers]
        if not rows:
            return

        def write(db: sqlite3.Connection) -> None:
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO remote_objects VALUES (?,?,?,?)", rows)
            db.execute("COMMIT")

        with self._lock:
            self._file.run(write)

    def forget(self, remote: str, oids: Iterable[str] | None = None) -> None:
        """Drop what is recorded of `remote` (every row when `oids` is None): the remote
        lost objects (gc deleted them, or it was wiped)."""

        def delete(db: sqlite3.Connection) -> None:
            db.execute("BEGIN")
            if oids is None:
                db.execute("DELETE FROM remote_objects WHERE remote = ?", (remote,))
            else:
                db.executemany("DELETE FROM remote_objects WHERE remote = ? AND oid = ?", ((remote, o) for o in oids))
            db.execute("COMMIT")

        with self._lock:
            self._file.run(delete)

    def close(self) -> None:
        with self._lock:
            self._file.close()
