"""Proving what a fetch recorded about a chunk before a push reuses it.

A fetch records each chunk it read as a claim (store/chunk_index.py): the manifest's
sha256 for it, its place on the remote, and the object and offset its bytes went to. The
object hashed to its oid before it was named, so every genuine copy of that object holds,
at that offset, exactly the bytes the remote's pack range decodes to. A claim is proven
when those bytes, read from such a copy, hash to the claimed sha256; only then may a push
name the pack range (docs/threat-model.md, "Chunk-index poisoning").

Owns: finding a genuine copy (the store's, else a thin checkout's work-tree file that
still hashes to the oid whole and was not touched while it was read) and the proof.
Must not: trust a work-tree file's bytes without that whole-file hash (an edit in place
can put the very content a lying claim names at its offset), talk to a remote, or print.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import BinaryIO

from gitmlx.format.manifest import ChunkRef
from gitmlx.store.blockio import BLOCK_SIZE
from gitmlx.store.chunk_index import ChunkIndex, Claim
from gitmlx.store.objects import Store


class ClaimProver:
    """Thread-safe; one per push. Each work-tree file is hashed whole at most once."""

    def __init__(self, store: Store, index: ChunkIndex, remote_id: str) -> None:
        self.store, self.index, self.remote_id = store, index, remote_id
        #: oid -> the identity of its work-tree file when it hashed to the oid, or None.
        self._intact: dict[str, tuple[int, ...] | None] = {}
        self._lock = threading.Lock()

    def proven(self, digest: bytes) -> ChunkRef | None:
        """The remote place a fetch recorded for chunk `digest`, if its bytes prove it."""
        claim = self.index.claim(self.remote_id, digest)
        if claim is None:
            return None
        data = self._stored_bytes(claim)
        if data is None:
            data = self._work_tree_bytes(claim)
        if data is None or len(data) != claim.ref.raw or hashlib.sha256(data).digest() != digest:
            return None
        self.index.prove(self.remote_id, claim)
        return claim.ref

    def _stored_bytes(self, claim: Claim) -> bytes | None:
        try:
            with self.store.open(claim.oid) as stream:
                stream.seek(claim.at)
                return stream.read(claim.ref.raw)
        except FileNotFoundError:
            return None

    def _work_tree_bytes(self, claim: Claim) -> bytes | None:
        """The claim's bytes from a thin checkout's file (`worktreelinks`), only while that
        file still holds the object whole: same inode, size, mtime and ctime as when it
        hashed to the oid (any write changes the last two)."""
        links = self.store.worktree_links
        if links is None:
            return None
        with self._lock:
            if claim.oid not in self._intact:
                self._intact[claim.oid] = _hashes_whole(links.open(claim.oid), claim.oid)
            intact = self._intact[claim.oid]
        stream = links.open(claim.oid) if intact is not None else None
        if stream is None:
            return None
        with stream:
            stream.seek(claim.at)
            data = stream.read(claim.ref.raw)
            return data if _identity(os.fstat(stream.fileno())) == intact else None


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _hashes_whole(stream: BinaryIO | None, oid: str) -> tuple[int, ...] | None:
    """The file's identity if it hashed to `oid` and did not change while read; else None."""
    if stream is None:
        return None
    with stream:
        before = _identity(os.fstat(stream.fileno()))
        digest = hashlib.sha256()
        while block := stream.read(BLOCK_SIZE):
            digest.update(block)
        same = _identity(os.fstat(stream.fileno())) == before
    return before if same and digest.hexdigest() == oid else None
