"""Rebuilding one object from its manifest: chunks taken from local objects or read from
packs with coalesced ranged reads, the object hashed as it is written and named in the
store only if it matches its pointer.

Owns: reading a manifest (bounded), splitting pack bytes into chunks, recording what a
fetch learnt in the chunk index (fetched chunks as unproven claims, local chunks as
proven), and the retry from the remote alone when a local chunk turns out stale.
Must not: decide which objects to fetch (download.py, batch.py) or print.
"""

from __future__ import annotations

import hashlib
import io
from array import array
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import BinaryIO

from gitmlx.errors import IntegrityError, ObjectNotFound
from gitmlx.format import codec, layout
from gitmlx.format.manifest import CODEC_RAW, ChunkRef, Manifest, decode
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import ProgressCallback, Remote, Sink
from gitmlx.store.chunk_index import ChunkIndex, LocalChunk
from gitmlx.store.objects import Store
from gitmlx.store.writer import ObjectWriter
from gitmlx.transfer import shards
from gitmlx.transfer.common import check_readable

#: One ranged read covers at most this many bytes of consecutive chunks in one pack.
RUN_LIMIT = 32 * 1024 * 1024
#: Manifests are refused past this size (~1.2 TiB objects at 80 KiB chunks).
MANIFEST_LIMIT = 1024 * 1024 * 1024
#: Objects at least this big are downloaded into `partial-<oid>` in the store's tmp/, and
#: a later download continues from the chunks of it that verify (docs/local-store.md, "Layout").
RESUME_FROM = 16 * 1024 * 1024


class _Bounded(io.BytesIO):
    def write(self, data: bytes | memoryview) -> int:  # type: ignore[override]
        if self.tell() + len(data) > MANIFEST_LIMIT:
            raise IntegrityError("a manifest on the remote is impossibly large", "check the remote")
        return super().write(data)


def fetch_manifest(remote: Remote, pointer: Pointer, probe_keys: bool = False) -> tuple[Manifest, int]:
    """The validated manifest of `pointer` and its size on the wire.

    On a format 2 remote, from the shard that names it, else (format-1 data left in an
    upgraded remote) from its own key. `probe_keys`: an oid no shard names is missing,
    with no request of its own (push's existence checks, where most oids are new: the
    upgrade put every valid key into a shard, so a miss can only re-upload an object a
    format 1 client wrote while the remote was being upgraded); a download always asks
    for the key."""
    damage: IntegrityError | None = None
    if check_readable(remote) == 2:
        found, damage = _from_shards(remote, pointer, relist=not probe_keys)
        if found is not None:
            return found
        if probe_keys and damage is None:
            raise _not_on(remote)
    buf = _Bounded()
    try:
        remote.get(layout.manifest_key(pointer.oid), buf)
    except ObjectNotFound:
        if damage is not None:
            raise damage from None
        raise _not_on(remote) from None
    data = buf.getbuffer()  # no copy: the decoded manifest keeps its records in these bytes
    return decode(data, pointer), len(data)


def _not_on(remote: Remote) -> ObjectNotFound:
    return ObjectNotFound(
        f"not on remote '{remote.display_url}'",
        "push it from a clone that has the file, then run 'git mlx pull'",
    )


def _from_shards(
    remote: Remote, pointer: Pointer, relist: bool
) -> tuple[tuple[Manifest, int] | None, IntegrityError | None]:
    """The first manifest of `pointer` a shard holds that validates, and the damage found
    on the way. A shard gone since the listing (merged, collected) is forgotten and the
    listing read again; a miss lists again when `relist` (a pusher may have written a
    shard since; ShardDirectory.relist says how often)."""
    directory = shards.directory(remote)
    damage: IntegrityError | None = None
    places = directory.places(pointer.oid)
    if not places and relist and directory.relist():
        places = directory.places(pointer.oid)
    tried = set()
    while places:
        place = places.pop(0)
        tried.add(place)
        try:
            data = directory.manifest_bytes(place)
            return (decode(data, pointer), len(data)), None
        except ObjectNotFound:
            directory.gone(place.shard_id)
            places = [p for p in directory.places(pointer.oid) if p not in tried]
        except IntegrityError as exc:
            damage = exc
    return None, damage


class ChunkSplitter:
    """A sink for one ranged read: splits the pack bytes into chunks and writes their raw
    bytes to the object being rebuilt, raw chunks as they come (runs of them in one write),
    compressed ones decoded whole.

    No chunk is hashed here: the object's hash proves its bytes, and what the manifest
    claims about each chunk is recorded unproven (`remember`), proven only when a push
    would rely on it (docs/threat-model.md, "Chunk-index poisoning")."""

    def __init__(self, chunks: list[ChunkRef], out: ObjectWriter) -> None:
        self.chunks, self.out = chunks, out
        self.k, self.left = 0, chunks[0].stored
        self.pending = bytearray()  # a compressed chunk split between reads

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
                if take < chunk.stored:
                    self.pending += view[pos : pos + take]
            pos += take
            self.left -= take
            if self.left == 0:
                if chunk.codec != CODEC_RAW:
                    stored = view[pos - take : pos] if take == chunk.stored else self.pending
                    self.out.write(codec.decode(chunk.codec, stored, chunk.raw))
                    self.pending.clear()
                self.k += 1
                self.left = self.chunks[self.k].stored if self.k < len(self.chunks) else 0
        if run is not None:
            self.out.write(view[run:pos])

    def finish(self) -> None:
        if self.k != len(self.chunks):
            raise IntegrityError("a pack on the remote ended early", "run 'git mlx fsck --remote'")


class Counting:
    def __init__(self, sink: Sink, counter: list[int]) -> None:
        self.sink, self.counter = sink, counter

    def write(self, data: bytes | memoryview) -> None:
        self.counter[0] += len(data)
        self.sink.write(data)


@dataclass
class Taken:
    """Where the chunks of a rebuilt object came from, by manifest index: read from the
    remote (`fetched`: the manifest's claims about them are unproven), or copied from a
    local object after hashing to their claimed sha256 (`local`: proven)."""

    fetched: array[int] = field(default_factory=lambda: array("l"))
    local: array[int] = field(default_factory=lambda: array("l"))


def rebuild(
    store: Store,
    remote: Remote,
    manifest: Manifest,
    local: dict[bytes, LocalChunk],
    progress: ProgressCallback | None,
) -> tuple[int, Taken]:
    """Write the object into the store from local chunks and pack ranges: bytes fetched,
    and where each chunk came from.

    A local chunk whose bytes do not hash to the claimed sha256 is read from the remote
    instead."""
    wire = [0]
    taken = Taken()
    resume = manifest.pointer.size >= RESUME_FROM
    with store.writer(durable=False, resume_as=manifest.oid if resume else None) as writer, ExitStack() as files:
        handles: dict[str, BinaryIO | None] = {}
        run: list[ChunkRef] = []  # consecutive chunks of one pack, read with one ranged GET
        run_first = 0  # the manifest index of run[0]
        # What an interrupted download left, as far as its chunks hash to the manifest's
        # claims: kept, and counted as proven local bytes (not as remote places: they were
        # not read from a pack by this run).
        done, done_bytes = writer.resume_prefix((c.raw, c.hash) for c in manifest.chunks) if resume else (0, 0)
        taken.local.extend(range(done))
        if progress and done_bytes:
            progress(done_bytes)

        def read_run() -> None:
            if not run:
                return
            start, end = run[0].offset, run[-1].offset + run[-1].stored
            splitter = ChunkSplitter(list(run), writer)
            remote.get(layout.pack_key(run[0].pack), Counting(splitter, wire), start, progress, end - start)
            splitter.finish()
            taken.fetched.extend(range(run_first, run_first + len(run)))
            run.clear()

        # One pass: each chunk record is decoded once (a manifest keeps them packed).
        for i, chunk in enumerate(manifest.chunks):
            if i < done:
                continue
            here = local.get(chunk.hash)
            data = _local_chunk(store, handles, files, here) if here is not None else None
            if data is not None and len(data) == chunk.raw and hashlib.sha256(data).digest() == chunk.hash:
                read_run()
                writer.write(data)
                taken.local.append(i)
                if progress:
                    progress(len(data))
                continue
            # Not here, or not what the index says any more (a thin checkout's work-tree
            # file edited in place, an object replaced on disk): read from the remote.
            if run:
                end = run[-1].offset + run[-1].stored
                if chunk.pack != run[0].pack or chunk.offset != end or end - run[0].offset >= RUN_LIMIT:
                    read_run()
            if not run:
                run_first = i
            run.append(chunk)
        read_run()
        writer.commit(manifest.pointer)
    return wire[0], taken


def _local_chunk(store: Store, handles: dict[str, BinaryIO | None], files: ExitStack, here: LocalChunk) -> bytes | None:
    """The bytes the chunk index places in a local object (or a thin checkout's work-tree
    file), unverified; None when that file is gone."""
    if here.oid not in handles:
        try:
            handles[here.oid] = files.enter_context(store.open_chunk_source(here.oid))
        except FileNotFoundError:
            handles[here.oid] = None
    src = handles[here.oid]
    if src is None:
        return None
    src.seek(here.offset)
    return src.read(here.raw)


def fetch_known(
    store: Store, remote: Remote, index: ChunkIndex, manifest: Manifest, progress: ProgressCallback | None
) -> int:
    """Rebuild an object whose manifest is in hand, reusing chunks of local objects."""
    rows = index.local_chunks(c.hash for c in manifest.chunks)
    present = {oid for oid in {c.oid for c in rows.values()} if store.has_chunk_source(oid)}
    local = {h: c for h, c in rows.items() if c.oid in present}
    try:
        wire, taken = rebuild(store, remote, manifest, local, progress)
    except IntegrityError:
        if not local:
            raise
        # A local chunk may be stale (object replaced on disk): retry from the remote alone.
        wire, taken = rebuild(store, remote, manifest, {}, progress)
    remember(index, remote.identity, manifest, taken)
    return wire


def remember(index: ChunkIndex, remote: str, manifest: Manifest, taken: Taken) -> None:
    """Record where the stored object's chunks are: a chunk read from the remote as a
    claim (unproven: its place on the remote and in the object), a chunk copied from a
    local object, whose bytes were hashed, as local. Call only once the object is stored."""
    marks = bytearray(len(manifest.chunks))  # one byte a chunk: 1 read from the remote, 2 local
    for i in taken.fetched:
        marks[i] = 1
    for i in taken.local:
        marks[i] = 2
    index.add_claims(remote, manifest.oid, _placed(manifest, marks, 1))
    index.add_local_chunks(manifest.oid, ((c.hash, at, c.raw) for c, at in _placed(manifest, marks, 2)))


def _placed(manifest: Manifest, marks: bytearray, mark: int) -> Iterator[tuple[ChunkRef, int]]:
    """The chunks marked `mark`, each with its offset in the object."""
    offset = 0
    for c, m in zip(manifest.chunks, marks, strict=True):
        if m == mark:
            yield c, offset
        offset += c.raw
