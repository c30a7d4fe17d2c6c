"""Packing for upload: chunk an object, find which chunks the remote lacks, and write those
into packs that upload in the background while chunking goes on.

Owns: the pack size target, solo packs (an object's own bytes as its pack), one-chunk
objects (their chunk hash is the oid), where a pack is built, and confirming that packs
the chunk index names still exist before a manifest names them (upload.py owns the order
of the whole push around this; chunk_digests.py the hashing pipeline).
Must not: write manifests or decide which objects to push.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from gitmlx.errors import MlxError
from gitmlx.format import chunking, codec, layout
from gitmlx.format.manifest import CODEC_RAW, ChunkRef
from gitmlx.format.pack_id import stored_hash
from gitmlx.format.pointer import Pointer
from gitmlx.osutil import stop
from gitmlx.remotes.base import ProgressCallback, Remote
from gitmlx.store.chunk_index import ChunkIndex
from gitmlx.store.objects import Store
from gitmlx.transfer import gc_marks
from gitmlx.transfer.chunk_digests import digested_chunks, plain_digests
from gitmlx.transfer.claims import ClaimProver
from gitmlx.transfer.pack_writer import PackWriter, StoreMaps
from gitmlx.transfer.remote_check import PackSizes

#: A pack is sealed once adding the next chunk would take it past this size.
PACK_TARGET = 64 * 1024 * 1024
#: An object at least this big whose chunks are all new and stored raw is uploaded as a
#: pack of its own: the pack's bytes are the object's, so its id is the oid (no second
#: hash), and it is copied from the store file as it is (kernel copy, or S3 upload of the
#: file), with no temporary pack written first (docs/storage-format.md, "Solo packs").
#: 8 MiB, boto3's own multipart threshold: from there one object is worth its own
#: request. Pushing 64 files of 16 MiB to S3 (bench/s3_throughput.py) went from 0.53 to
#: 1.2 of a plain boto3 upload_file loop when this came down from 64 MiB.
SOLO_MIN = 8 * 1024 * 1024
#: ... and at most this big: every remote object stays under 5 GiB, the most S3 takes in a
#: single PUT or CopyObject (what bucket-copying tools fall back to), and one pack never
#: pins more than this for gc. Bigger objects are packed as usual.
SOLO_MAX = 4 * 1024 * 1024 * 1024
#: To a directory remote, the copy of a would-be solo pack starts once this much of the
#: object was found new and incompressible.
SPECULATE_AFTER = 16 * 1024 * 1024
#: A one-chunk object at least this big goes into its pack from its mapped store pack
#: (no copy); a smaller one is read and copied: for it the page faults of the map cost
#: more system time than the copy (20,000 x 16 KiB).
MAP_MIN = 64 * 1024


@dataclass(frozen=True)
class _Planned:
    """A chunk of a large object, between the pass that hashes it and the one that packs it."""

    hash: bytes
    offset: int
    raw: int
    known: ChunkRef | NewChunk | None  # already on the remote or in this push
    #: The compression decision for a chunk that is not known, or None: left to the second
    #: pass, since once the object cannot be a solo pack the first need not compress at all.
    codec: int | None
    width: int  # codec.encode's width for it (byte planes), 0 when not byte-grouped


class RunIndex(NamedTuple):
    """The chunk index's answers for a run of one-chunk objects (`Packer.indexed`)."""

    found: dict[bytes, ChunkRef]  # chunk hash -> where the index places it on the remote
    claims: bool  # whether any claim is recorded (else none is looked up)


@dataclass(frozen=True, slots=True)
class NewChunk:
    """A chunk written into pack number `seq` of this push (its id is known once sealed).
    Slotted: a push holds one per new chunk until its packs are up (100,000 small files)."""

    hash: bytes
    seq: int
    offset: int
    stored: int
    raw: int
    codec: int


class Packer:
    """Turns objects into chunk lists, writing chunks the remote lacks into packs that
    upload in the background while chunking goes on."""

    def __init__(
        self,
        store: Store,
        remote: Remote,
        index: ChunkIndex,
        concurrency: int,
        progress: ProgressCallback | None,
        marked_packs: frozenset[str] = frozenset(),
        sizes: PackSizes | None = None,
        damaged_packs: frozenset[str] = frozenset(),
        notice: Callable[[str], None] | None = None,
        grouped: bool = False,
        by_table: bool = False,
    ) -> None:
        self.store, self.remote, self.index = store, remote, index
        #: Whether chunks may be stored byte-grouped (codec 2): only to remotes whose format
        #: has it (format 1 readers refuse a manifest naming an unknown codec).
        self.grouped = grouped
        #: Whether packs are named by their table id (format 2), not by hashing their bytes.
        self.by_table = by_table
        self.notice = notice  # told what a wait is for (a gc deleting on the remote)
        #: Packs `gc --remote` marked for deletion: never reused, announced before re-written.
        self.marked_packs = marked_packs
        self.remote_id = remote.identity
        #: Chunks a fetch recorded, reused only once proven against a verified copy.
        self.claims = ClaimProver(store, index, self.remote_id)
        self.progress = progress
        self.pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        self._uploading = threading.BoundedSemaphore(max(2, concurrency // 2))
        self.new: dict[bytes, NewChunk] = {}
        self.packs: dict[int, Future[str]] = {}
        self.writers: dict[int, PackWriter] = {}  # chunking thread -> its open pack
        self._next_seq = 0
        self._pack_lock = threading.Lock()
        self.wire_bytes = 0
        #: Solo packs this push uploaded (each one object's bytes, named by its oid).
        self.solo: set[str] = set()
        self._lock = threading.Lock()
        #: Store packs mapped by `_mapped`: closed once every pack is written.
        self._maps = StoreMaps()
        self.sizes = sizes or PackSizes(remote)
        #: Packs the remote lost or holds damaged: never reused, forgotten by the index.
        self.damaged: set[str] = set()
        for pack_id in damaged_packs:
            self.forget(pack_id)

    def forget(self, pack_id: str) -> None:
        """Stop relying on a pack, in this push and (through the index) in later ones."""
        with self._lock:
            if pack_id in self.damaged:
                return
            self.damaged.add(pack_id)
        self.index.forget_remote_pack(self.remote_id, pack_id)

    def reusable(self, ref: ChunkRef) -> bool:
        """Whether a chunk the index places on the remote may be named by a new manifest:
        its pack is not marked by gc (b: it may be deleted before our manifest lands), not
        known damaged, and still on the remote, long enough (one HEAD/stat per pack and
        push). A pack found missing or short is forgotten."""
        if ref.pack in self.marked_packs:
            return False
        with self._lock:
            if ref.pack in self.damaged:
                return False
        if self.sizes.covers(ref.pack, ref.offset + ref.stored):
            return True
        self.forget(ref.pack)
        return False

    def indexed(self, pointers: list[Pointer]) -> RunIndex:
        """What the index knows of the one-chunk objects among `pointers` (their chunk hash
        is the oid): one query and one lock for a run of small objects instead of one per
        object. Hand it to `chunk_object` for each of them."""
        wanted = [bytes.fromhex(p.oid) for p in pointers if chunking.one_chunk(p.size)]
        if not wanted:
            return RunIndex({}, True)
        return RunIndex(self.index.remote_chunks(self.remote_id, wanted), self.index.may_have_claims())

    def chunk_object(self, pointer: Pointer, indexed: RunIndex | None = None) -> list[ChunkRef | NewChunk]:
        """The object's chunks in order: each already on the remote, or added to a pack.
        `indexed`: `self.indexed` of a list holding `pointer`, when the caller has it.
        FileNotFoundError when the store lacks the object; MlxError when its size is not
        the pointer's (a pointer lying about the size must never get a manifest under the
        real oid)."""
        if chunking.one_chunk(pointer.size):
            return [self._chunk_whole(pointer, indexed)]  # checks the size as it reads
        self._check_size(pointer)
        if SOLO_MIN <= pointer.size <= SOLO_MAX:
            return self._chunk_large(pointer)
        entries: list[ChunkRef | NewChunk] = []
        sampler = codec.Sampler(self.grouped)
        stream = self.store.open(pointer.oid)
        # Above SOLO_MAX, a second core hashes; small objects are chunked in parallel already.
        source = digested_chunks(stream) if pointer.size > SOLO_MAX else plain_digests(stream)
        for digest, view in source:
            stop.check()
            entry = self._known(digest)
            if entry is None:
                kind, stored = sampler.encode(view)
                entry = self._add(digest, len(view), kind, stored)
            entries.append(entry)
            if self.progress:
                self.progress(len(view))
        return entries

    def _chunk_whole(self, pointer: Pointer, indexed: RunIndex | None) -> ChunkRef | NewChunk:
        """A small object is one chunk (chunking.one_chunk): its hash is the oid, which the
        store verified when the object came in (solo packs trust it the same way), so its
        bytes are neither cut nor hashed, and read only when the remote lacks them."""
        stop.check()
        digest = bytes.fromhex(pointer.oid)
        entry = self._known(digest, indexed)
        if entry is not None:
            self._check_size(pointer)  # the remote's copy is named only for the object we hold
        else:
            mapped = self._mapped(pointer) if pointer.size >= MAP_MIN else None
            if mapped is not None:
                entry = self._add_lone(digest, mapped, mapped=True)
            else:
                with self.store.open(pointer.oid) as stream:
                    data = stream.read(pointer.size + 1)
                if len(data) != pointer.size:
                    self._check_size(pointer)
                    raise MlxError(f"local object {pointer.short_oid} changed while it was being pushed")
                entry = self._add_lone(digest, data)
        if self.progress:
            self.progress(pointer.size)
        return entry

    def _add_lone(self, digest: bytes, data: bytes | memoryview, mapped: bool = False) -> NewChunk:
        """Store a one-chunk object's bytes: as they are when a sample shows they do not
        compress (without a copy when `mapped`), else encoded."""
        width = codec.lone_width(data, self.grouped)
        if width is None:
            return self._add(digest, len(data), CODEC_RAW, data, mapped)
        kind, stored = codec.encode(data, width)
        return self._add(digest, len(data), kind, stored)

    def _mapped(self, pointer: Pointer) -> memoryview | None:
        """The stored object's bytes as a view of its mapped store pack (StoreMaps); None
        for a loose object, or where mapping fails (then it is read). MlxError when the
        stored size is not the pointer's."""
        where = self.store.locate(pointer.oid)  # FileNotFoundError when missing
        if not isinstance(where, tuple):
            return None
        fd, offset, size = where
        if size != pointer.size:
            self._check_size(pointer)  # raises, naming both sizes
        return self._maps.view(fd, offset, size)

    def _check_size(self, pointer: Pointer) -> None:
        """FileNotFoundError when the store lacks the object, MlxError when its size differs."""
        size = self.store.size(pointer.oid)
        if size != pointer.size:
            raise MlxError(f"the pointer says {pointer.size} bytes, the stored object has {size}")

    def _known(self, digest: bytes, indexed: RunIndex | None = None) -> ChunkRef | NewChunk | None:
        """Where this push may take the chunk from: its own packs, or a confirmed remote pack.
        `indexed`: the index's answers for a run of chunks this one is in (`indexed`)."""
        entry = self.new.get(digest)
        if entry is None:
            entry = (
                indexed.found.get(digest) if indexed is not None else self.index.remote_chunk(self.remote_id, digest)
            )
        if entry is None and (indexed is None or indexed.claims):
            entry = self.claims.proven(digest)
        if isinstance(entry, ChunkRef) and not self.reusable(entry):
            return None  # stored anew, in a pack of this push
        return entry

    def _chunk_large(self, pointer: Pointer) -> list[ChunkRef | NewChunk]:
        """Two passes: hash and look up every chunk first (nothing written); then either the
        whole object becomes a solo pack, or the new chunks go into packs as usual.

        To a directory remote the solo copy starts as soon as the first SPECULATE_AFTER
        bytes are all new and raw, so the kernel copies while the rest is hashed. Should
        a later chunk turn out known after all, that copy is a valid pack nobody names,
        which `gc --remote` collects.
        """
        planned: list[_Planned] = []
        sampler = codec.Sampler(self.grouped)
        solo = True
        copying: Future[None] | None = None
        speculate = self.remote.copies_are_local and pointer.oid not in self.marked_packs
        offset = 0
        for digest, data in digested_chunks(self.store.open(pointer.oid)):
            stop.check()
            known = self._known(digest)
            kind: int | None = None
            width = 0
            if solo and known is None:
                kind, stored = sampler.encode(data)
                width = codec.width_of(kind, stored)
            solo = solo and known is None and kind == CODEC_RAW
            planned.append(_Planned(digest, offset, len(data), known, kind, width))
            offset += len(data)
            if self.progress:
                self.progress(len(data))
            if speculate and solo and copying is None and offset >= SPECULATE_AFTER:
                copying = self.pool.submit(self._put_solo, pointer)
        if solo and offset == pointer.size:
            return self._upload_solo(pointer, planned, copying)
        if copying is not None:
            copying.exception()  # let it finish; an unneeded pack is gc's to collect
        entries: list[ChunkRef | NewChunk] = []
        with self.store.open(pointer.oid) as stream:
            for chunk in planned:
                entry = chunk.known or self.new.get(chunk.hash)  # a repeat within this object
                if entry is None:
                    stream.seek(chunk.offset)
                    raw = stream.read(chunk.raw)
                    if len(raw) != chunk.raw:
                        raise MlxError(f"local object {pointer.short_oid} changed while it was being pushed")
                    if chunk.codec is None:
                        kind, stored = sampler.encode(raw)
                    elif chunk.codec == CODEC_RAW:
                        kind, stored = CODEC_RAW, raw
                    else:
                        kind, stored = codec.encode(raw, chunk.width)
                    entry = self._add(chunk.hash, chunk.raw, kind, stored)
                entries.append(entry)
        return entries

    def _put_solo(self, pointer: Pointer) -> None:
        self.remote.put_file(layout.pack_key(pointer.oid), self.store.path(pointer.oid))

    def _upload_solo(
        self, pointer: Pointer, planned: list[_Planned], copying: Future[None] | None
    ) -> list[ChunkRef | NewChunk]:
        pack_id = pointer.oid  # sha256 of the pack's bytes, since they are the object's
        if copying is not None:
            copying.result()
        else:
            if pack_id in self.marked_packs:
                gc_marks.announce(self.remote, self.store.tmp_dir, packs=[pack_id], waiting=self.notice)
            self._put_solo(pointer)
        refs = [ChunkRef(c.hash, pack_id, c.offset, c.raw, c.raw, CODEC_RAW) for c in planned]
        with self._lock:
            self.wire_bytes += pointer.size
            self.solo.add(pack_id)
            self.damaged.discard(pack_id)
        self.index.add_remote_chunks(self.remote_id, refs)
        return list(refs)

    def _add(self, digest: bytes, raw: int, kind: int, stored: bytes | memoryview, mapped: bool = False) -> NewChunk:
        """`mapped`: `stored` views a mapped store pack (PackWriter.append_mapped)."""
        hashed = stored_hash(kind, digest, stored) if self.by_table else b""
        with self._pack_lock:
            known = self.new.get(digest)  # another thread may have added it meanwhile
            if known is not None:
                return known
            # One open pack per chunking thread, so each object's new chunks stay contiguous
            # in one pack and a download reads them with few ranged requests.
            thread = threading.get_ident()
            writer = self.writers.get(thread)
            if writer is not None and writer.size + len(stored) > PACK_TARGET:
                self._seal(thread)
                writer = None
            if writer is None:
                writer = self.writers[thread] = PackWriter(self._pack_path(), self._next_seq, self.by_table)
                self._next_seq += 1
            append = writer.append_mapped if mapped else writer.append
            offset = append(stored, hashed)  # type: ignore[arg-type]
            chunk = NewChunk(digest, writer.seq, offset, len(stored), raw, kind)
            self.new[digest] = chunk
            writer.chunks.append(chunk)
            return chunk

    def _pack_path(self) -> Path:
        """Where a new pack is built: in the remote's staging folder when it has one (a
        directory remote: the pack is then renamed into place, not copied again, even
        across file systems), else in the store's temporary folder (S3)."""
        staged = self.remote.staging_path()
        if staged is not None:
            return staged
        self.store.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.store.tmp_dir / f"pack-{os.getpid()}-{secrets.token_hex(8)}"

    def _seal(self, thread: int) -> None:
        writer = self.writers.pop(thread, None)
        if writer is None:
            return
        pack_id = writer.seal()
        # Backpressure: chunking waits while this many packs are uploading, so the memory a
        # transfer holds per pack (S3) and the disk the packs wait on stay bounded.
        self._uploading.acquire()
        future = self.pool.submit(self._upload_pack, writer, pack_id, writer.chunks)
        future.add_done_callback(lambda _: self._uploading.release())
        self.packs[writer.seq] = future

    def _upload_pack(self, writer: PackWriter, pack_id: str, chunks: list[NewChunk]) -> str:
        if pack_id in self.marked_packs:
            # gc: same chunks in the same order as a marked pack, so the same key; protect it first.
            gc_marks.announce(self.remote, self.store.tmp_dir, packs=[pack_id], waiting=self.notice)
        try:
            if os.stat(writer.path).st_size != writer.size:  # named only once whole
                raise MlxError(f"pack {pack_id[:10]} was not written whole ({writer.path})")
            self.remote.put_file(layout.pack_key(pack_id), writer.path, consume=True)
        finally:
            writer.path.unlink(missing_ok=True)
        with self._lock:
            self.wire_bytes += writer.size
        # Known from now on: the pack is on the remote, whatever happens to this push. Written
        # through at once, so a killed push's next run reuses every pack it finished
        # (docs/storage-format.md, "Resuming a push").
        self.index.add_remote_chunks(
            self.remote_id, [ChunkRef(c.hash, pack_id, c.offset, c.stored, c.raw, c.codec) for c in chunks]
        )
        self.index.flush()
        return pack_id

    def finish(self) -> dict[int, str | BaseException]:
        """Seal the last pack and wait for every upload: seq → pack id, or the failure."""
        with self._pack_lock:
            for thread in list(self.writers):
                self._seal(thread)
        outcome: dict[int, str | BaseException] = {}
        for seq, future in self.packs.items():
            try:
                outcome[seq] = future.result()
            except BaseException as exc:  # noqa: BLE001 - reported per object
                outcome[seq] = exc
        self.pool.shutdown()
        self._maps.close()  # no pack writer reads them any more
        return outcome
