"""What the client knows about chunks: where each lives on a remote, and where a copy
sits inside an object of the local store.

Owns: `index.sqlite` beside the local store (sqlite3 from the standard library: shared
safely by concurrent processes, constant memory however many chunks are known).
Must not: talk to a remote.

A local row is a hint: bytes taken from a local object are hashed before use. A remote
row is not: a push names a remote chunk in its manifest after checking only that the pack
exists and is long enough, so the chunk's sha256 must already be proven. A remote row
therefore enters only for a chunk whose bytes this client hashed to that sha256: chunks it
uploaded, and fetched chunks whose claim a push proved before relying on it
(docs/threat-model.md, "Chunk-index poisoning").

A fetch does not hash each chunk (the object's own hash proves its bytes, not the
manifest's claims about them): it records each fetched chunk as a *claim*, where the
manifest places it on the remote and where its bytes went in the verified object. A claim
is never a remote row. It serves as a local hint like a local row, and becomes a remote
row (and a local one) once a push has hashed the bytes at that place of a verified copy
of the object to the claimed sha256 (transfer/claims.py).

Dedup knowledge therefore comes only from chunks this client wrote or read:
no index server, no listing of the bucket.
"""

from __future__ import annotations

import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gitmlx.format.manifest import ChunkRef, Manifest
from gitmlx.osutil.cachedb import CacheFile

# Not typing.TYPE_CHECKING: the filter imports this module, and typing costs its start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS remote_chunks (
    remote TEXT NOT NULL, hash BLOB NOT NULL, pack TEXT NOT NULL, offset INTEGER NOT NULL,
    stored INTEGER NOT NULL, raw INTEGER NOT NULL, codec INTEGER NOT NULL,
    PRIMARY KEY (remote, hash)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS local_chunks (
    hash BLOB PRIMARY KEY, oid TEXT NOT NULL, offset INTEGER NOT NULL, raw INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claimed_chunks (
    hash BLOB NOT NULL, remote TEXT NOT NULL, pack TEXT NOT NULL, offset INTEGER NOT NULL,
    stored INTEGER NOT NULL, raw INTEGER NOT NULL, codec INTEGER NOT NULL, oid TEXT NOT NULL, at INTEGER NOT NULL,
    PRIMARY KEY (hash, remote)) WITHOUT ROWID;
"""
_BATCH = 500
#: `PRAGMA user_version` of the current schema. Version 0 (before 2026-12) recorded every
#: chunk a fetched manifest claimed, proven or not: its rows are dropped on open.
_VERSION = 1


def _batched(items: Iterable[bytes], n: int) -> Iterator[list[bytes]]:
    it = iter(items)
    while batch := list(itertools.islice(it, n)):
        yield batch


def _upgrade(db: sqlite3.Connection) -> None:
    if db.execute("PRAGMA user_version").fetchone()[0] < _VERSION:
        db.execute("BEGIN IMMEDIATE")
        if db.execute("PRAGMA user_version").fetchone()[0] < _VERSION:
            db.execute("DELETE FROM remote_chunks")
            db.execute("DELETE FROM local_chunks")
            db.execute(f"PRAGMA user_version = {_VERSION}")
        db.execute("COMMIT")


@dataclass(frozen=True)
class LocalChunk:
    oid: str
    offset: int
    raw: int


@dataclass(frozen=True)
class Claim:
    """A fetched manifest's word, unproven: chunk `ref` is on the remote, and its bytes
    were written at byte `at` of object `oid`, which hashed to its oid."""

    ref: ChunkRef
    oid: str
    at: int


class ChunkIndex:
    """Thread-safe. Writes are buffered in memory (and visible to this object's reads at
    once) and reach sqlite in one transaction per batch (one per object made many-file
    clones pay a second of serial time). Call `close` to flush.

    A damaged file (overwritten, cut short) is moved aside and the index starts empty
    (osutil.cachedb): it costs dedup, never the command."""

    FLUSH_ROWS = 20_000

    def __init__(self, path: Path, warn: Callable[[str], None] | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file = CacheFile(path, _SCHEMA, 60, warn, _upgrade, self._forget_emptied)
        self._remote_rows: dict[tuple[str, bytes], tuple] = {}
        self._local_rows: dict[bytes, tuple] = {}
        #: Claims not flushed yet, by hash (the last one wins until the flush).
        self._claim_rows: dict[bytes, tuple] = {}
        self._db_has_local: bool | None = None
        self._db_has_claims: bool | None = None

    def _forget_emptied(self) -> None:
        self._db_has_local = self._db_has_claims = None

    def _pending(self) -> int:
        return len(self._remote_rows) + len(self._local_rows) + len(self._claim_rows)

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._file.run(work)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending():
            return

        def write(db: sqlite3.Connection) -> None:
            # In key order: hashes come in random order, and a transaction inserting
            # thousands of rows at random places outgrew sqlite's page cache, which then
            # wrote and read pages back to the WAL (a clone of 20,000 small files: 10,000
            # page writes and 11,000 reads); in order, each page is filled once.
            db.execute("BEGIN")
            db.executemany("INSERT OR REPLACE INTO remote_chunks VALUES (?,?,?,?,?,?,?)", _in_order(self._remote_rows))
            db.executemany("INSERT OR REPLACE INTO local_chunks VALUES (?,?,?,?)", _in_order(self._local_rows))
            claims = "INSERT OR REPLACE INTO claimed_chunks VALUES (?,?,?,?,?,?,?,?,?)"
            db.executemany(claims, _in_order(self._claim_rows))
            db.execute("COMMIT")

        self._run(write)
        if self._local_rows:
            self._db_has_local = True
        if self._claim_rows:
            self._db_has_claims = True
        self._remote_rows.clear()
        self._local_rows.clear()
        self._claim_rows.clear()

    def close(self) -> None:
        with self._lock:
            self._flush_locked()
            self._file.close()

    def _select_locked(self, sql: str, keys: list[bytes], extra: tuple = ()) -> list[tuple]:
        def select(db: sqlite3.Connection) -> list[tuple]:
            rows: list[tuple] = []
            for i in range(0, len(keys), _BATCH):
                batch = keys[i : i + _BATCH]
                marks = ",".join("?" * len(batch))
                rows += db.execute(sql.format(marks=marks), (*extra, *batch)).fetchall()
            return rows

        return self._run(select)

    def remote_chunks(self, remote: str, hashes: Iterable[bytes]) -> dict[bytes, ChunkRef]:
        keys = set(hashes)
        with self._lock:
            found = {h: ChunkRef(*self._remote_rows[(remote, h)][1:]) for h in keys if (remote, h) in self._remote_rows}
            rows = self._select_locked(
                "SELECT hash, pack, offset, stored, raw, codec FROM remote_chunks"
                " WHERE remote = ? AND hash IN ({marks})",
                [h for h in keys if h not in found],
                (remote,),
            )
        found.update({r[0]: ChunkRef(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows})
        return found

    def remote_chunk(self, remote: str, digest: bytes) -> ChunkRef | None:
        with self._lock:
            pending = self._remote_rows.get((remote, digest))
            if pending is not None:
                return ChunkRef(*pending[1:])
            row = self._run(
                lambda db: db.execute(
                    "SELECT pack, offset, stored, raw, codec FROM remote_chunks WHERE remote = ? AND hash = ?",
                    (remote, digest),
                ).fetchone()
            )
        return None if row is None else ChunkRef(digest, *row)

    def local_chunks(self, hashes: Iterable[bytes]) -> dict[bytes, LocalChunk]:
        """Where each of `hashes` sits in a stored object (or a claim's verified object),
        for those known: hints, to hash before use. Read in batches: the hashes of a
        manifest of millions of chunks are never all held at once."""
        found: dict[bytes, LocalChunk] = {}
        with self._lock:
            if self._db_has_local is None:
                self._db_has_local = self._exists_locked("local_chunks")
            if self._db_has_claims is None:
                self._db_has_claims = self._exists_locked("claimed_chunks")
            for batch in _batched(hashes, self.FLUSH_ROWS):
                keys = set(batch)
                found.update({h: LocalChunk(*self._local_rows[h][1:]) for h in keys if h in self._local_rows})
                if self._db_has_local:  # a fresh clone's index is empty: skip the query
                    rows = self._select_locked(
                        "SELECT hash, oid, offset, raw FROM local_chunks WHERE hash IN ({marks})",
                        [h for h in keys if h not in found],
                    )
                    found.update({r[0]: LocalChunk(r[1], r[2], r[3]) for r in rows})
                for h in keys - found.keys():
                    row = self._claim_rows.get(h)
                    if row is not None:
                        found[h] = LocalChunk(row[7], row[8], row[5])
                if self._db_has_claims:
                    rows = self._select_locked(
                        "SELECT hash, oid, at, raw FROM claimed_chunks WHERE hash IN ({marks})",
                        [h for h in keys if h not in found],
                    )
                    found.update({r[0]: LocalChunk(r[1], r[2], r[3]) for r in rows})
        return found

    def _exists_locked(self, table: str) -> bool:
        return bool(self._run(lambda db: db.execute(f"SELECT EXISTS(SELECT 1 FROM {table})").fetchone()[0]))

    def add_claims(self, remote: str, oid: str, chunks: Iterable[tuple[ChunkRef, int]]) -> None:
        """Record fetched chunks (each with its offset in object `oid`) as claims: never
        trusted by a push until proven (`prove`)."""
        with self._lock:
            for c, at in chunks:
                self._claim_rows[c.hash] = (c.hash, remote, c.pack, c.offset, c.stored, c.raw, c.codec, oid, at)
                if self._pending() >= self.FLUSH_ROWS:
                    self._flush_locked()

    def may_have_claims(self) -> bool:
        """Whether any claim is recorded: False lets a caller skip `claim` for a run of
        chunks (one lock instead of one per chunk, while a pack upload flushes rows)."""
        with self._lock:
            if self._claim_rows:
                return True
            if self._db_has_claims is None:
                self._db_has_claims = self._exists_locked("claimed_chunks")
            return bool(self._db_has_claims)

    def claim(self, remote: str, digest: bytes) -> Claim | None:
        """What a fetch recorded about chunk `digest` on `remote`, unproven."""
        with self._lock:
            row = self._claim_rows.get(digest)
            if row is None or row[1] != remote:
                if self._db_has_claims is None:
                    self._db_has_claims = self._exists_locked("claimed_chunks")
                if not self._db_has_claims:
                    return None
                row = self._run(
                    lambda db: db.execute(
                        "SELECT * FROM claimed_chunks WHERE hash = ? AND remote = ?", (digest, remote)
                    ).fetchone()
                )
        if row is None:
            return None
        return Claim(ChunkRef(row[0], row[2], row[3], row[4], row[5], row[6]), row[7], row[8])

    def prove(self, remote: str, claim: Claim) -> None:
        """Record a claim whose bytes were hashed to its sha256: a remote and a local row."""
        ref = claim.ref
        row = (remote, ref.hash, ref.pack, ref.offset, ref.stored, ref.raw, ref.codec)
        with self._lock:
            self._remote_rows[(remote, ref.hash)] = row
            self._local_rows[ref.hash] = (ref.hash, claim.oid, claim.at, ref.raw)

    def add_remote_chunks(self, remote: str, chunks: Iterable[ChunkRef]) -> None:
        with self._lock:
            for c in chunks:
                self._remote_rows[(remote, c.hash)] = (remote, c.hash, c.pack, c.offset, c.stored, c.raw, c.codec)
                if self._pending() >= self.FLUSH_ROWS:
                    self._flush_locked()  # inside the loop: memory stays bounded for any manifest

    def forget_remote_pack(self, remote: str, pack: str) -> None:
        """Forget every chunk known to be in `pack` on `remote`: the remote no longer has
        it (wiped, restored from an older backup, collected), so its chunks must be
        uploaded again instead of being named by new manifests."""
        with self._lock:
            stale = [key for key, row in self._remote_rows.items() if key[0] == remote and row[2] == pack]
            for key in stale:
                del self._remote_rows[key]
            for digest in [h for h, row in self._claim_rows.items() if row[1] == remote and row[2] == pack]:
                del self._claim_rows[digest]

            def delete(db: sqlite3.Connection) -> None:
                db.execute("DELETE FROM remote_chunks WHERE remote = ? AND pack = ?", (remote, pack))
                db.execute("DELETE FROM claimed_chunks WHERE remote = ? AND pack = ?", (remote, pack))

            self._run(delete)

    def add_local_object(self, manifest: Manifest) -> None:
        """Record where each chunk of a stored object sits inside it: for a manifest this
        client wrote from the object's own bytes."""
        offsets = itertools.accumulate((c.raw for c in manifest.chunks), initial=0)  # one more than chunks
        rows = [(c.hash, o, c.raw) for c, o in zip(manifest.chunks, offsets, strict=False)]
        self.add_local_chunks(manifest.oid, rows)

    def add_local_chunks(self, oid: str, chunks: Iterable[tuple[bytes, int, int]]) -> None:
        """Record chunks (sha256, offset, length) found inside stored object `oid`."""
        with self._lock:
            for digest, offset, raw in chunks:
                self._local_rows[digest] = (digest, oid, offset, raw)
                if self._pending() >= self.FLUSH_ROWS:
                    self._flush_locked()

    def forget_local_object(self, oid: str) -> None:
        with self._lock:
            self._flush_locked()
            self._run(lambda db: db.execute("DELETE FROM local_chunks WHERE oid = ?", (oid,)))


def _in_order(rows: dict) -> list[tuple]:
    """Buffered rows sorted by their table's primary key (each dict's key is the row's)."""
    return [rows[key] for key in sorted(rows)]
