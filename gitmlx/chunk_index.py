"""What the client knows about chunks: where each lives on a remote, and where a copy
sits inside an object of the local store.

Owns: `index.sqlite` beside the local store (sqlite3 from the standard library: shared
safely by concurrent processes, constant memory however many chunks are known).
Must not: talk to a remote. Everything here is a hint: a remote location is re-checked
(the pack must exist before a manifest names it) and local bytes are verified with the
object's sha256, so a stale or damaged index can cost dedup, never correctness.

Dedup knowledge therefore comes only from manifests this client wrote or fetched:
no index server, no listing of the bucket.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gitmlx.manifest import ChunkRef, Manifest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS remote_chunks (
    remote TEXT NOT NULL, hash BLOB NOT NULL, pack TEXT NOT NULL, offset INTEGER NOT NULL,
    stored INTEGER NOT NULL, raw INTEGER NOT NULL, codec INTEGER NOT NULL,
    PRIMARY KEY (remote, hash)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS local_chunks (
    hash BLOB PRIMARY KEY, oid TEXT NOT NULL, offset INTEGER NOT NULL, raw INTEGER NOT NULL) WITHOUT ROWID;
"""
_BATCH = 500


@dataclass(frozen=True)
class LocalChunk:
    oid: str
    offset: int
    raw: int


class ChunkIndex:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=60, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _select(self, sql: str, keys: list[bytes], extra: tuple = ()) -> list[tuple]:
        rows: list[tuple] = []
        with self._lock:
            db = self._conn()
            for i in range(0, len(keys), _BATCH):
                batch = keys[i : i + _BATCH]
                marks = ",".join("?" * len(batch))
                rows += db.execute(sql.format(marks=marks), (*extra, *batch)).fetchall()
        return rows

    def remote_chunks(self, remote: str, hashes: Iterable[bytes]) -> dict[bytes, ChunkRef]:
        keys = list(set(hashes))
        rows = self._select(
            "SELECT hash, pack, offset, stored, raw, codec FROM remote_chunks WHERE remote = ? AND hash IN ({marks})",
            keys,
            (remote,),
        )
        return {r[0]: ChunkRef(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows}

    def remote_chunk(self, remote: str, digest: bytes) -> ChunkRef | None:
        with self._lock:
            row = (
                self._conn()
                .execute(
                    "SELECT pack, offset, stored, raw, codec FROM remote_chunks WHERE remote = ? AND hash = ?",
                    (remote, digest),
                )
                .fetchone()
            )
        return None if row is None else ChunkRef(digest, *row)

    def local_chunks(self, hashes: Iterable[bytes]) -> dict[bytes, LocalChunk]:
        keys = list(set(hashes))
        rows = self._select("SELECT hash, oid, offset, raw FROM local_chunks WHERE hash IN ({marks})", keys)
        return {r[0]: LocalChunk(r[1], r[2], r[3]) for r in rows}

    def add_remote_chunks(self, remote: str, chunks: Iterable[ChunkRef]) -> None:
        rows = [(remote, c.hash, c.pack, c.offset, c.stored, c.raw, c.codec) for c in chunks]
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO remote_chunks VALUES (?,?,?,?,?,?,?)", rows)
            db.execute("COMMIT")

    def add_local_object(self, manifest: Manifest) -> None:
        """Record where each chunk of a stored object sits inside it."""
        rows = []
        offset = 0
        for c in manifest.chunks:
            rows.append((c.hash, manifest.oid, offset, c.raw))
            offset += c.raw
        with self._lock:
            db = self._conn()
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO local_chunks VALUES (?,?,?,?)", rows)
            db.execute("COMMIT")

    def forget_local_object(self, oid: str) -> None:
        with self._lock:
            self._conn().execute("DELETE FROM local_chunks WHERE oid = ?", (oid,))
