"""Many small objects in few reads: objects pushed together sit together in a pack, so one
ranged read per run of adjacent objects fetches a whole batch, each object verified and
stored on its own as soon as its last byte arrives.

Owns: grouping small objects into batches, finding the runs, and splitting one read among
the objects it covers.
Must not: print, or rebuild an object another way (rebuild.py does, for the objects a
batch cannot cover).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from gitmlx.errors import IntegrityError, MlxError
from gitmlx.format import layout
from gitmlx.format.manifest import CODEC_RAW, Manifest
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import ProgressCallback, Remote
from gitmlx.store.chunk_index import ChunkIndex
from gitmlx.store.objects import Store
from gitmlx.store.writer import PACK_BELOW, ObjectWriter, failed_verification
from gitmlx.transfer.rebuild import (
    RUN_LIMIT,
    ChunkSplitter,
    Counting,
    Taken,
    fetch_known,
    fetch_manifest,
    remember,
)

#: Objects under this size are fetched in batches (`fetch_batch`), as the store packs them.
BATCH_BELOW = PACK_BELOW
#: A batch holds at most this many objects and bytes: enough for one read to cover many
#: objects pushed together (a clone's requests grow with N / BATCH_OBJECTS per pack: 512
#: keeps a clone of 20,000 small files under 200 requests), few enough that the first of
#: them are ready soon (each object is stored as soon as its last byte arrives).
BATCH_OBJECTS = 512
BATCH_BYTES = 16 * 1024 * 1024
#: A batched read may read and throw away this many bytes between two objects' spans
#: (objects the batch does not need, pushed in between) instead of starting a new read.
GAP_LIMIT = 256 * 1024

#: Told, once per object of a batch, that it is stored (None) or why it is not.
ObjectDone = Callable[[Pointer, "BaseException | None"], None]


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


def _raw(manifest: Manifest) -> bool:
    """Whether every chunk is stored raw: the span's bytes are then the object's."""
    return all(c.codec == CODEC_RAW for c in manifest.chunks)


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
        self, store: Store, spans: list[_Span], stored: Callable[[Manifest, Taken, BaseException | None], None]
    ):
        self.store, self.spans, self.stored = store, spans, stored
        self.k = 0
        self.pos = spans[0].start
        self.writer: ObjectWriter | None = None
        self.splitter: ChunkSplitter | None = None
        self.failure: BaseException | None = None

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        whole: list[tuple[_Span, memoryview]] = []  # objects all in this block: stored at once
        try:
            self._take(view, whole)
        finally:
            if whole:
                self._store_whole(whole)

    def _take(self, view: memoryview, whole: list[tuple[_Span, memoryview]]) -> None:
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
            if take == span.end - span.start and _raw(span.manifest):
                whole.append((span, view[i : i + take]))  # the whole object in this block
                self.k += 1
                i += take
                self.pos += take
                continue
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

    def _store_whole(self, objects: list[tuple[_Span, memoryview]]) -> None:
        """Verify and store objects of raw chunks whose bytes all came in one block:
        hashed where they lie and appended to the store's pack together, without a writer
        and a splitter each (most objects of a clone of small files: per object, that
        machinery, and a write each, cost the thread more than hashing and writing the
        bytes)."""
        import hashlib  # not at module level: the filter's start waits for OpenSSL's load

        verified: list[tuple[_Span, memoryview]] = []
        for span, data in objects:
            expected = span.manifest.pointer
            oid = hashlib.sha256(data).hexdigest()
            if oid != expected.oid or len(data) != expected.size:
                self.stored(span.manifest, Taken(), failed_verification(expected, oid, len(data)))
            else:
                verified.append((span, data))
        failure: OSError | None = None
        try:
            if verified:
                self.store.add_packed_many([(span.manifest.oid, data) for span, data in verified], durable=False)
        except OSError as exc:
            failure = exc  # none of them was stored
        for span, _ in verified:
            taken = Taken()
            if failure is None:
                taken.fetched.extend(range(len(span.manifest.chunks)))
            self.stored(span.manifest, taken, failure)

    def _splitter(self, span: _Span) -> ChunkSplitter:
        if self.splitter is None:
            self.writer = self.store.writer(durable=False)
            self.splitter = ChunkSplitter(list(span.manifest.chunks), self.writer)
        return self.splitter

    def _complete(self, span: _Span) -> None:
        failure, self.failure = self.failure, None
        taken = Taken()
        if failure is None:
            try:
                splitter = self._splitter(span)
                splitter.finish()
                self.writer.commit(span.manifest.pointer)  # type: ignore[union-attr]
                taken.fetched.extend(range(len(span.manifest.chunks)))
            except (MlxError, OSError) as exc:
                failure = exc
        self._drop_writer()
        self.k += 1
        self.stored(span.manifest, taken, failure)

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
    identity = remote.identity
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
        # Its chunk records decoded once (a small object has few): the batch reads them
        # several times, and a ChunkTable decodes a record at each read.
        manifests.append(Manifest(manifest.oid, manifest.size, tuple(manifest.chunks)))

    def stored(manifest: Manifest, taken: Taken, failure: BaseException | None) -> None:
        if failure is None:
            remember(index, identity, manifest, taken)
        done(wanted[(manifest.oid, manifest.size)], failure)

    def alone(manifest: Manifest) -> None:
        try:
            wire[0] += fetch_known(store, remote, index, manifest, progress)
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
            remote.get(layout.pack_key(run[0].pack), Counting(reader, wire), start, progress, end - start)
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
