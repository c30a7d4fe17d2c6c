"""Download: rebuild objects from their manifests, taking chunks already inside local
objects from disk and the rest from packs with coalesced ranged reads.

Every object is hashed as it is rebuilt and named in the store only if its sha256 and
size match the pointer (ObjectWriter.commit); a damaged manifest, pack or local chunk
can make a download fail, never produce a wrong object.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

from gitmlx.errors import IntegrityError, MlxError, ObjectNotFound
from gitmlx.format import codec, layout
from gitmlx.format.manifest import CODEC_RAW, ChunkRef, Manifest, decode
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import ProgressCallback, Remote, Sink
from gitmlx.store.chunk_index import ChunkIndex, LocalChunk
from gitmlx.store.objects import Store
from gitmlx.store.writer import PACK_BELOW, ObjectWriter
from gitmlx.transfer.common import (
    FileDone,
    TransferResult,
    check_readable,
    index_for,
    parallel,
    remote_identity,
    unique,
)

#: One ranged read covers at most this many bytes of consecutive chunks in one pack.
RUN_LIMIT = 32 * 1024 * 1024
#: Manifests are refused past this size (~1.2 TiB objects at 80 KiB chunks).
MANIFEST_LIMIT = 1024 * 1024 * 1024
#: Objects under this size are fetched in batches (`fetch_batch`), as the store packs them.
BATCH_BELOW = PACK_BELOW
#: A batch holds at most this many objects and bytes: enough for one read to cover many
#: objects pushed together, few enough that the first of them are ready soon.
BATCH_OBJECTS = 64
BATCH_BYTES = 16 * 1024 * 1024
#: A batched read may read and throw away this many bytes between two objects' spans
#: (objects the batch does not need, pushed in between) instead of starting a new read.
GAP_LIMIT = 256 * 1024

#: Told, once per object of a batch, that it is stored (None) or why it is not.
ObjectDone = Callable[[Pointer, "BaseException | None"], None]


class _Bounded(io.BytesIO):
    def write(self, data: bytes | memoryview) -> int:  # type: ignore[override]
        if self.tell() + len(data) > MANIFEST_LIMIT:
            raise IntegrityError("a manifest on the remote is impossibly large", "check the remote")
        return super().write(data)


def fetch_manifest(remote: Remote, pointer: Pointer) -> tuple[Manifest, int]:
    """The validated manifest of `pointer` and its size on the wire."""
    check_readable(remote)
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


class _ChunkProver:
    """Hashes chunks' raw bytes and compares them with the sha256 their manifest claims;
    `verified()` lists the manifest indexes that matched.

    The object's own hash proves the bytes, not the claims: a manifest may rebuild its
    object correctly and still lie about a chunk's hash, and only a proven claim may enter
    the chunk index, where a later push would reuse it for other content
    (docs/threat-model.md, "Chunk-index poisoning").

    Past `INLINE_BYTES`, batches are hashed on a helper thread while the download goes on
    (hashlib releases the interpreter lock), at most `IN_FLIGHT` batches at a time, so a
    large object's proof costs a copy of its bytes rather than a second serial hash.
    """

    INLINE_BYTES = 4 * 1024 * 1024
    IN_FLIGHT = 2
    _pool: ThreadPoolExecutor | None = None
    _pool_lock = threading.Lock()

    def __init__(self) -> None:
        self.batch: list[tuple[int, bytes, bytes]] = []  # (index, claimed sha256, raw bytes)
        self.batch_bytes = 0
        self.jobs: deque[Future[list[int]]] = deque()
        self.done: list[int] = []

    def add(self, index: int, claim: bytes, raw: bytes) -> None:
        self.batch.append((index, claim, raw))
        self.batch_bytes += len(raw)
        if self.batch_bytes >= self.INLINE_BYTES:
            if len(self.jobs) >= self.IN_FLIGHT:
                self.done += self.jobs.popleft().result()
            self.jobs.append(self._helper().submit(_prove, self.batch))
            self.batch, self.batch_bytes = [], 0

    def verified(self) -> list[int]:
        while self.jobs:
            self.done += self.jobs.popleft().result()
        self.done += _prove(self.batch)
        self.batch, self.batch_bytes = [], 0
        return self.done

    @classmethod
    def _helper(cls) -> ThreadPoolExecutor:
        with cls._pool_lock:
            if cls._pool is None:
                cls._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlx-prove")
            return cls._pool


def _prove(batch: list[tuple[int, bytes, bytes]]) -> list[int]:
    return [index for index, claim, raw in batch if hashlib.sha256(raw).digest() == claim]


class _ChunkSplitter:
    """A sink for one ranged read: splits the pack bytes into chunks, decodes each and
    writes the raw bytes to the object being rebuilt; each chunk goes to a _ChunkProver."""

    def __init__(self, chunks: list[ChunkRef], out: ObjectWriter, first: int = 0) -> None:
        self.chunks, self.out, self.first = chunks, out, first
        self.k, self.left = 0, chunks[0].stored
        self.pending = bytearray()
        self.prover = _ChunkProver()

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
            whole = take == chunk.stored  # the chunk lies in this view: one copy, not two
            if not whole:
                self.pending += view[pos : pos + take]
            pos += take
            self.left -= take
            if self.left == 0:
                if whole:
                    raw = bytes(view[pos - take : pos])
                else:
                    raw = bytes(self.pending)
                    self.pending.clear()
                if chunk.codec != CODEC_RAW:
                    raw = codec.decode(chunk.codec, raw, chunk.raw)
                    self.out.write(raw)
                self.prover.add(self.first + self.k, chunk.hash, raw)
                self.k += 1
                self.left = self.chunks[self.k].stored if self.k < len(self.chunks) else 0
        if run is not None:
            self.out.write(view[run:pos])

    def finish(self) -> None:
        if self.k != len(self.chunks):
            raise IntegrityError("a pack on the remote ended early", "run 'git mlx fsck --remote'")

    def verified(self) -> list[int]:
        """Manifest indexes of the chunks whose bytes hashed to their claimed sha256."""
        return self.prover.verified()


class _Counting:
    def __init__(self, sink: Sink, counter: list[int]) -> None:
        self.sink, self.counter = sink, counter

    def write(self, data: bytes | memoryview) -> None:
        self.counter[0] += len(data)
        self.sink.write(data)


@dataclass
class _Proven:
    """Indexes of a manifest's chunks whose bytes hashed to the sha256 it claims for them:
    read from the remote (`fetched`), or copied from a local object (`local`)."""

    fetched: list[int] = field(default_factory=list)
    local: list[int] = field(default_factory=list)


def rebuild(
    store: Store,
    remote: Remote,
    manifest: Manifest,
    local: dict[bytes, LocalChunk],
    progress: ProgressCallback | None,
) -> tuple[int, _Proven]:
    """Write the object into the store from local chunks and pack ranges: bytes fetched,
    and which chunks' bytes hashed to what the manifest claims.

    A local chunk whose bytes do not hash to the claimed sha256 fails the rebuild at once
    (the caller retries from the remote alone)."""
    wire = [0]
    proven = _Proven()
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
                if len(data) != here.raw or hashlib.sha256(data).digest() != chunks[i].hash:
                    raise IntegrityError(f"local object {here.oid[:10]} does not hold the chunk the index says")
                writer.write(data)
                proven.local.append(i)
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
            splitter = _ChunkSplitter(list(chunks[i:j]), writer, i)
            start = chunks[i].offset
            remote.get(layout.pack_key(chunks[i].pack), _Counting(splitter, wire), start, progress, end - start)
            splitter.finish()
            proven.fetched += splitter.verified()
            i = j
        writer.commit(manifest.pointer)
    return wire[0], proven


def _fetch(store: Store, remote: Remote, index: ChunkIndex, pointer: Pointer, progress: ProgressCallback | None) -> int:
    manifest, manifest_bytes = fetch_manifest(remote, pointer)
    return _fetch_known(store, remote, index, manifest, progress) + manifest_bytes


def _fetch_known(
    store: Store, remote: Remote, index: ChunkIndex, manifest: Manifest, progress: ProgressCallback | None
) -> int:
    """Rebuild an object whose manifest is in hand, reusing chunks of local objects."""
    local = {h: c for h, c in index.local_chunks(c.hash for c in manifest.chunks).items() if store.has(c.oid)}
    try:
        wire, proven = rebuild(store, remote, manifest, local, progress)
    except IntegrityError:
        if not local:
            raise
        # A local chunk may be stale (object replaced on disk): retry from the remote alone.
        wire, proven = rebuild(store, remote, manifest, {}, progress)
    _remember(index, remote_identity(remote), manifest, proven)
    return wire


def _remember(index: ChunkIndex, remote: str, manifest: Manifest, proven: _Proven) -> None:
    """Record where the stored object's chunks are, locally and on the remote (for dedup),
    only for chunks whose claims were proven on the way in. A chunk copied from a local
    object proves nothing about its place on the remote: it is recorded as local only."""
    chunks = manifest.chunks
    index.add_remote_chunks(remote, [chunks[i] for i in proven.fetched])
    offsets = list(itertools.accumulate((c.raw for c in chunks), initial=0))
    index.add_local_chunks(
        manifest.oid, [(chunks[i].hash, offsets[i], chunks[i].raw) for i in proven.local + proven.fetched]
    )


# -- many small objects: one read per run of adjacent objects in a pack ------------------


class _Span(NamedTuple):
    """An object whose chunks lie back to back in one pack: bytes `start` to `end`."""

    pack: str
    start: int
    end: int
    manifest: Manifest


def _span(manifest: Manifest) -> _Span | None:
    """The object's span, or None when its chunks are not one run in one pack."""
    chunks = manifest.chunks
    if not chunks:
        return None
    end = chunks[0].offset
    for c in chunks:
        if c.pack != chunks[0].pack or c.offset != end:
            return None
        end += c.stored
    return _Span(chunks[0].pack, chunks[0].offset, end, manifest)


def _runs(spans: list[_Span]) -> list[list[_Span]]:
    """Spans grouped into reads: same pack, in order, gaps under GAP_LIMIT, at most
    RUN_LIMIT bytes; an overlapping span (a chunk shared by two objects) starts a new read."""
    runs: list[list[_Span]] = []
    for span in sorted(spans, key=lambda s: (s.pack, s.start, s.end)):
        run = runs[-1] if runs else None
        if (
            run is None
            or span.pack != run[0].pack
            or not run[-1].end <= span.start <= run[-1].end + GAP_LIMIT
            or span.end - run[0].start > RUN_LIMIT
        ):
            runs.append([span])
        else:
            run.append(span)
    return runs


class _SpanReader:
    """The sink of one read covering several objects' spans, in order.

    Bytes between spans are dropped. Each object is checked against its pointer and
    stored as soon as its last byte arrives, so the first objects of a batch are ready
    while the rest are still on their way; one object failing its check fails alone.
    """

    def __init__(
        self, store: Store, spans: list[_Span], stored: Callable[[Manifest, _Proven, BaseException | None], None]
    ):
        self.store, self.spans, self.stored = store, spans, stored
        self.k = 0
        self.pos = spans[0].start
        self.writer: ObjectWriter | None = None
        self.splitter: _ChunkSplitter | None = None
        self.failure: BaseException | None = None

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        i = 0
        while i < len(view):
            if self.k >= len(self.spans):
                raise IntegrityError("the remote sent more bytes than asked for", "run the command again")
            span = self.spans[self.k]
            if self.pos < span.start:  # a gap: bytes of objects nobody asked for
                skip = min(span.start - self.pos, len(view) - i)
                i += skip
                self.pos += skip
                continue
            take = min(span.end - self.pos, len(view) - i)
            if self.failure is None:
                try:
                    self._splitter(span).write(view[i : i + take])
                except IntegrityError as exc:
                    self._drop_writer()
                    self.failure = exc
            i += take
            self.pos += take
            if self.pos == span.end:
                self._complete(span)

    def _splitter(self, span: _Span) -> _ChunkSplitter:
        if self.splitter is None:
            self.writer = self.store.writer(durable=False)
            self.splitter = _ChunkSplitter(list(span.manifest.chunks), self.writer)
        return self.splitter

    def _complete(self, span: _Span) -> None:
        failure, self.failure = self.failure, None
        proven = _Proven()
        if failure is None:
            try:
                splitter = self._splitter(span)
                splitter.finish()
                self.writer.commit(span.manifest.pointer)  # type: ignore[union-attr]
                proven.fetched = splitter.verified()
            except (MlxError, OSError) as exc:
                failure = exc
        self._drop_writer()
        self.k += 1
        self.stored(span.manifest, proven, failure)

    def _drop_writer(self) -> None:
        if self.writer is not None:
            self.writer.abort()
        self.writer = self.splitter = None

    def close(self) -> list[_Span]:
        """Stop; the spans not finished (the read ended early or failed)."""
        self._drop_writer()
        return self.spans[self.k :]


def fetch_batch(
    store: Store,
    remote: Remote,
    index: ChunkIndex,
    pointers: list[Pointer],
    done: ObjectDone,
    progress: ProgressCallback | None = None,
) -> int:
    """Download small objects with one remote read per run of adjacent objects in a pack
    (objects pushed together sit together); bytes fetched.

    Calls `done` exactly once per pointer. An object whose chunks are spread out (dedup
    against other objects) or partly local is fetched on its own; so is every object of a
    read that fails or ends early, which then reports its own error.
    """
    identity = remote_identity(remote)
    wanted = {(p.oid, p.size): p for p in pointers}
    wire = [0]
    manifests: list[Manifest] = []
    for p in pointers:
        try:
            manifest, size = fetch_manifest(remote, p)
        except (MlxError, OSError) as exc:
            done(p, exc)
            continue
        wire[0] += size
        manifests.append(manifest)

    def stored(manifest: Manifest, proven: _Proven, failure: BaseException | None) -> None:
        if failure is None:
            _remember(index, identity, manifest, proven)
        done(wanted[(manifest.oid, manifest.size)], failure)

    def alone(manifest: Manifest) -> None:
        try:
            wire[0] += _fetch_known(store, remote, index, manifest, progress)
        except (MlxError, OSError) as exc:
            done(wanted[(manifest.oid, manifest.size)], exc)
        else:
            done(wanted[(manifest.oid, manifest.size)], None)

    local = index.local_chunks(c.hash for m in manifests for c in m.chunks)
    spans: list[_Span] = []
    for manifest in manifests:
        span = _span(manifest)
        if span is None or any(c.hash in local for c in manifest.chunks):
            alone(manifest)
        else:
            spans.append(span)
    for run in _runs(spans):
        reader = _SpanReader(store, run, stored)
        start, end = run[0].start, run[-1].end
        try:
            remote.get(layout.pack_key(run[0].pack), _Counting(reader, wire), start, progress, end - start)
        except (MlxError, OSError):
            pass  # each object left is fetched on its own below, and fails with its own error
        finally:
            left = reader.close()
        for span in left:
            alone(span.manifest)
    return wire[0]


def batches(pointers: list[Pointer]) -> tuple[list[list[Pointer]], list[Pointer]]:
    """Small objects in batches for `fetch_batch` (in the given order), and the rest."""
    groups: list[list[Pointer]] = []
    large: list[Pointer] = []
    size = 0
    for p in pointers:
        if p.size >= BATCH_BELOW:
            large.append(p)
            continue
        if not groups or len(groups[-1]) >= BATCH_OBJECTS or size + p.size > BATCH_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(p)
        size += p.size
    return groups, large


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
