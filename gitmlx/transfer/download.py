"""Download: rebuild objects from their manifests, taking chunks already inside local
objects from disk and the rest from packs with coalesced ranged reads.

Every object is hashed as it is rebuilt and named in the store only if its sha256 and
size match the pointer (ObjectWriter.commit); a damaged manifest, pack or local chunk
can make a download fail, never produce a wrong object.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable
from contextlib import ExitStack
from typing import BinaryIO

from gitmlx import codec, layout
from gitmlx.chunk_index import ChunkIndex, LocalChunk
from gitmlx.errors import IntegrityError, MlxError, ObjectNotFound
from gitmlx.manifest import CODEC_RAW, ChunkRef, Manifest, decode
from gitmlx.pointer import Pointer
from gitmlx.remotes.base import ProgressCallback, Remote, Sink
from gitmlx.store import ObjectWriter, Store
from gitmlx.transfer.common import FileDone, TransferResult, index_for, parallel, remote_identity, unique

#: One ranged read covers at most this many bytes of consecutive chunks in one pack.
RUN_LIMIT = 32 * 1024 * 1024
#: Manifests are refused past this size (~1.2 TiB objects at 80 KiB chunks).
MANIFEST_LIMIT = 1024 * 1024 * 1024


class _Bounded(io.BytesIO):
    def write(self, data: bytes | memoryview) -> int:  # type: ignore[override]
        if self.tell() + len(data) > MANIFEST_LIMIT:
            raise IntegrityError("a manifest on the remote is impossibly large", "check the remote")
        return super().write(data)


def fetch_manifest(remote: Remote, pointer: Pointer) -> tuple[Manifest, int]:
    """The validated manifest of `pointer` and its size on the wire."""
    buf = _Bounded()
    try:
        remote.get(layout.manifest_key(pointer.oid), buf)
    except ObjectNotFound:
        raise ObjectNotFound(
            f"not on remote '{remote.display_url}'",
            "push it from a clone that has the file, then run 'git mlx pull'",
        ) from None
    data = buf.getvalue()
    return decode(data, pointer), len(data)


class _ChunkSplitter:
    """A sink for one ranged read: splits the pack bytes into chunks, decodes each and
    writes the raw bytes to the object being rebuilt."""

    def __init__(self, chunks: list[ChunkRef], out: ObjectWriter) -> None:
        self.chunks, self.out = chunks, out
        self.k, self.left = 0, chunks[0].stored
        self.pending = bytearray()

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        end = len(view)
        pos = 0
        run: int | None = None  # start of consecutive raw bytes not written yet: one write
        while pos < end:
            if self.k >= len(self.chunks):
                raise IntegrityError("the remote sent more bytes than asked for", "run the command again")
            chunk = self.chunks[self.k]
            take = min(self.left, end - pos)
            if chunk.codec == CODEC_RAW:
                if run is None:
                    run = pos
            else:
                if run is not None:
                    self.out.write(view[run:pos])
                    run = None
                self.pending += view[pos : pos + take]
            pos += take
            self.left -= take
            if self.left == 0:
                if chunk.codec != CODEC_RAW:
                    self.out.write(codec.decode(chunk.codec, self.pending, chunk.raw))
                    self.pending.clear()
                self.k += 1
                self.left = self.chunks[self.k].stored if self.k < len(self.chunks) else 0
        if run is not None:
            self.out.write(view[run:pos])

    def finish(self) -> None:
        if self.k != len(self.chunks):
            raise IntegrityError("a pack on the remote ended early", "run 'git mlx fsck --remote'")


class _Counting:
    def __init__(self, sink: Sink, counter: list[int]) -> None:
        self.sink, self.counter = sink, counter

    def write(self, data: bytes | memoryview) -> None:
        self.counter[0] += len(data)
        self.sink.write(data)


def rebuild(
    store: Store,
    remote: Remote,
    manifest: Manifest,
    local: dict[bytes, LocalChunk],
    progress: ProgressCallback | None,
) -> int:
    """Write the object into the store from local chunks and pack ranges; bytes fetched."""
    wire = [0]
    chunks = manifest.chunks
    with store.writer(durable=False) as writer, ExitStack() as files:
        handles: dict[str, BinaryIO] = {}
        i = 0
        while i < len(chunks):
            here = local.get(chunks[i].hash)
            if here is not None:
                if here.oid not in handles:
                    handles[here.oid] = files.enter_context(store.open(here.oid))
                src = handles[here.oid]
                src.seek(here.offset)
                data = src.read(here.raw)
                if len(data) != here.raw:
                    raise IntegrityError(f"local object {here.oid[:10]} is shorter than its manifest says")
                writer.write(data)
                if progress:
                    progress(len(data))
                i += 1
                continue
            j = i + 1
            end = chunks[i].offset + chunks[i].stored
            while (
                j < len(chunks)
                and chunks[j].hash not in local
                and chunks[j].pack == chunks[i].pack
                and chunks[j].offset == end
                and end - chunks[i].offset < RUN_LIMIT
            ):
                end += chunks[j].stored
                j += 1
            splitter = _ChunkSplitter(list(chunks[i:j]), writer)
            start = chunks[i].offset
            remote.get(layout.pack_key(chunks[i].pack), _Counting(splitter, wire), start, progress, end - start)
            splitter.finish()
            i = j
        writer.commit(manifest.pointer)
    return wire[0]


def _fetch(store: Store, remote: Remote, index: ChunkIndex, pointer: Pointer, progress: ProgressCallback | None) -> int:
    manifest, manifest_bytes = fetch_manifest(remote, pointer)
    local = {h: c for h, c in index.local_chunks(c.hash for c in manifest.chunks).items() if store.has(c.oid)}
    try:
        wire = rebuild(store, remote, manifest, local, progress)
    except IntegrityError:
        if not local:
            raise
        # A local chunk may be stale (object replaced on disk): retry from the remote alone.
        wire = rebuild(store, remote, manifest, {}, progress)
    index.add_remote_chunks(remote_identity(remote), manifest.chunks)
    index.add_local_object(manifest)
    return wire + manifest_bytes


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
) -> TransferResult:
    """Fetch every object the store lacks, verifying each before it is named."""
    result = TransferResult()
    index = index_for(store)
    lock = threading.Lock()

    def one(p: Pointer) -> None:
        try:
            if store.has(p.oid):
                with lock:
                    result.skipped.append(p)
                return
            wire = _fetch(store, remote, index, p, progress)
            with lock:
                result.moved.append(p)
                result.wire_bytes += wire
        except (MlxError, OSError) as exc:
            with lock:
                result.fail(p, exc)
        finally:
            if file_done:
                file_done(p)

    parallel(one, unique(pointers), concurrency)
    index.close()
    store.sync()
    return result
