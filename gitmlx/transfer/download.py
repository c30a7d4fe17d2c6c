"""Download: rebuild objects from their manifests, taking chunks already inside local
objects from disk and the rest from packs with coalesced ranged reads.

Every object is hashed as it is rebuilt and named in the store only if its sha256 and
size match the pointer (ObjectWriter.commit); a damaged manifest, pack or local chunk
can make a download fail, never produce a wrong object.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from gitmlx.errors import MlxError
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import ProgressCallback, Remote
from gitmlx.store.chunk_index import ChunkIndex
from gitmlx.store.objects import Store
from gitmlx.transfer.batch import batches, fetch_batch
from gitmlx.transfer.common import (
    FileDone,
    TransferResult,
    index_for,
    parallel,
    unique,
)
from gitmlx.transfer.rebuild import fetch_known, fetch_manifest


def _fetch(store: Store, remote: Remote, index: ChunkIndex, pointer: Pointer, progress: ProgressCallback | None) -> int:
    manifest, manifest_bytes = fetch_manifest(remote, pointer)
    return fetch_known(store, remote, index, manifest, progress) + manifest_bytes


def fetch_one(
    store: Store,
    remote: Remote,
    pointer: Pointer,
    progress: ProgressCallback | None = None,
    index: ChunkIndex | None = None,
) -> int:
    """Download one object into the store (used by smudge); bytes fetched.

    Pass a shared `index` when fetching many objects from threads (it is thread-safe).
    """
    if index is not None:
        return _fetch(store, remote, index, pointer.as_mlx(), progress)
    own = index_for(store)
    try:
        return _fetch(store, remote, own, pointer.as_mlx(), progress)
    finally:
        own.close()
        store.sync()


def download(
    store: Store,
    remote: Remote,
    pointers: Iterable[Pointer],
    concurrency: int = 8,
    progress: ProgressCallback | None = None,
    file_done: FileDone | None = None,
    notice: Callable[[str], None] | None = None,
) -> TransferResult:
    """Fetch every object the store lacks, verifying each before it is named."""
    result = TransferResult()
    index = index_for(store, notice)
    lock = threading.Lock()

    def finished(p: Pointer, failure: BaseException | None, wire: int = 0) -> None:
        with lock:
            if failure is None:
                result.moved.append(p)
            else:
                result.fail(p, failure)
            result.wire_bytes += wire
        if file_done:
            file_done(p)

    def one(p: Pointer) -> None:
        try:
            wire = _fetch(store, remote, index, p, progress)
        except (MlxError, OSError) as exc:
            finished(p, exc)
        else:
            finished(p, None, wire)

    def batch(group: list[Pointer]) -> None:
        wire = fetch_batch(store, remote, index, group, finished, progress)
        with lock:
            result.wire_bytes += wire

    todo: list[Pointer] = []
    for p in unique(pointers):
        if store.has(p.oid):
            result.skipped.append(p)
            if file_done:
                file_done(p)
        else:
            todo.append(p)
    groups, large = batches(todo)
    jobs: list[Callable[[], None]] = [lambda g=g: batch(g) for g in groups]
    jobs += [lambda p=p: one(p) for p in large]
    parallel(lambda job: job(), jobs, concurrency)
    index.close()
    store.sync()
    return result
