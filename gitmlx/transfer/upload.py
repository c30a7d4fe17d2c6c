"""Upload: chunk objects, pack the chunks the remote lacks, then write manifests.

What the remote lacks: an object is skipped only when its manifest validates and every
pack it names is long enough (remote_check: a GET and cached sizes, no pack bytes read),
or when the caller trusts the remote record and it vouches for the object (confirm.py);
otherwise it is uploaded again and its manifest rewritten, so a re-push that asks (`git
mlx push`) repairs a lost or damaged manifest and a lost or truncated pack. Bytes changed in place (same size) show
only in a full rebuild: `fsck --remote --full --repair` passes such objects as `replace`.

Write order (docs/storage-format.md, "Write order"): the format marker, then packs, then
a manifest only once every pack it names is confirmed on the remote: uploaded by this
push, or, for a chunk the index says is already there, its pack checked with a HEAD/stat
(exists, and long enough) while chunking. A pack found missing or short is forgotten by
the index and its chunks go into this push's packs. A crash at any point leaves at worst
unreferenced packs (collected by `gc --remote`), never a manifest that points at nothing.
Concurrent pushers cannot corrupt each other: packs and manifests are content-addressed
and immutable, so two writers of one key write equivalent bytes."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable

from gitmlx.errors import MlxError
from gitmlx.format import layout
from gitmlx.format.manifest import ChunkRef, Manifest
from gitmlx.format.pointer import Pointer
from gitmlx.osutil import stop
from gitmlx.remotes.base import ProgressCallback, Remote
from gitmlx.store.objects import Store
from gitmlx.store.remote_record import RemoteRecord
from gitmlx.transfer import confirm, gc_marks, shards
from gitmlx.transfer.common import (
    FileDone,
    TransferResult,
    index_for,
    parallel,
    put_bytes,
    runs,
    unique,
)
from gitmlx.transfer.packer import NewChunk, Packer, RunIndex
from gitmlx.transfer.remote_check import INTACT, MISSING, PackSizes, RemoteCopy

#: What an object the remote record vouched for counts as (it was not asked about).
TRUSTED = RemoteCopy(INTACT)


def upload(
    store: Store,
    remote: Remote,
    pointers: Iterable[Pointer],
    concurrency: int = 8,
    progress: ProgressCallback | None = None,
    file_done: FileDone | None = None,
    replace: Collection[str] = (),
    damaged_packs: Collection[str] = (),
    notice: Callable[[str], None] | None = None,
    record: RemoteRecord | None = None,
    trust_seconds: int | None = None,
    grouped: bool | None = None,
) -> TransferResult:
    """Make the remote hold every object in `pointers`; objects missing locally fail.

    An object counts as held when its manifest validates and every pack it names is long
    enough (remote_check): anything less is uploaded again and its manifest rewritten.
    `replace` names objects to upload again even so, and `damaged_packs` packs whose
    chunks must not be reused (`fsck --remote --full --repair`: bytes changed in place).
    `record`: the remote record, updated with what is confirmed or written; its rows are
    trusted (no check at all) when `trust_seconds` is given (confirm.py says when).
    `grouped`: whether float chunks may be stored byte-grouped (codec 2); None (the
    default) lets the remote's format decide. Never on a format 1 remote: its readers,
    the previous release among them, refuse codecs they do not know.

    Over 80 lines on purpose: it is the push's write order (module docstring), step by
    step; each step is a call, and splitting them apart would hide that order.
    """
    result = TransferResult()
    todo = unique(pointers)
    if not todo:
        return result
    # Cooperate with `gc --remote` (docs/storage-format.md, "Garbage collection"): read its
    # pending notes once, BEFORE looking at what the remote has (what is not marked now
    # cannot be deleted before this push ends; confirm.look). (a) A marked manifest may be
    # deleted before our ref lands, so it counts as missing and is written again, after a
    # `keep` note protects it; (b) chunks in marked packs are never reused (Packer).
    sizes = PackSizes(remote)
    seen = confirm.look(remote, todo, record, trust_seconds, concurrency, sizes, marker_from=store.tmp_dir)
    marks, copies = seen.marks, seen.copies
    result.checked = len(copies)
    # Missing: checked and not intact, or named by `replace` or `revive` (asked of
    # `copies`, not copied into a set of 100,000 oids on a first push).
    damaged = frozenset(damaged_packs).union(*(copy.bad_packs for copy in copies.values()))
    revive = {p.oid for p in todo if p.oid in marks.manifests}
    if revive:
        gc_marks.announce(remote, store.tmp_dir, manifests=revive, waiting=notice)
    again = set(replace) | revive
    index = index_for(store, notice)
    grouped = (seen.format or 0) >= 2 and grouped is not False
    by_table = (seen.format or 0) >= 2  # pack ids: format 2 names packs by their table
    packer = Packer(store, remote, index, concurrency, progress, marks.packs, sizes, damaged, notice, grouped, by_table)
    plans: deque[tuple[Pointer, list[ChunkRef | NewChunk]]] = deque()
    plan_lock = threading.Lock()

    def plan(p: Pointer, indexed: RunIndex) -> None:
        """Chunk one object (several at once: hashing, chunking and zstd release the GIL)."""
        failure: BaseException
        copy = copies.get(p.oid, TRUSTED)
        if p.oid not in again and copy.intact:
            with plan_lock:
                result.skipped.append(p)
            if file_done:
                file_done(p)
            return
        try:
            entries = packer.chunk_object(p, indexed)  # and checks the stored object's size
            with plan_lock:
                plans.append((p, entries))
            return
        except FileNotFoundError:
            damage = "" if copy.state in (MISSING, INTACT) else f"the remote's copy is damaged ({copy.problem}) and "
            failure = MlxError(f"{damage}not in the local store")
        except (MlxError, OSError) as exc:
            failure = exc
        with plan_lock:
            result.fail(p, failure)
        if file_done:
            file_done(p)

    def plan_run(run: list[Pointer]) -> None:
        indexed = packer.indexed(run)
        for p in run:
            plan(p, indexed)

    try:
        parallel(plan_run, runs(todo), min(concurrency, os.cpu_count() or 2))
        packs = packer.finish()
    except KeyboardInterrupt:
        stop.request()  # pack uploads in flight fail at their next block; S3 aborts their parts
        packer.pool.shutdown(wait=True, cancel_futures=True)
        raise
    result.wire_bytes += packer.wire_bytes
    uploaded = {pack_id for pack_id in packs.values() if isinstance(pack_id, str)} | packer.solo
    lock = threading.Lock()
    # Format 2: every manifest of this push goes into one shard, written after all of them
    # are known (so after every pack they name); format 1: one key per object.
    sharded = seen.format == 2
    batched: list[tuple[str, int, bytes]] = []  # (oid, size, manifest), a shard's input as is
    batched_pointers: list[Pointer] = []

    def finish_object(item: tuple[Pointer, list[ChunkRef | NewChunk]]) -> None:
        pointer, entries = item
        try:
            refs = []
            for e in entries:
                if isinstance(e, NewChunk):
                    pack = packs[e.seq]
                    if isinstance(pack, BaseException):
                        raise pack
                    refs.append(ChunkRef(e.hash, pack, e.offset, e.stored, e.raw, e.codec))
                else:
                    # Reused: its pack was confirmed long enough while chunking (cached here).
                    if e.pack not in uploaded and not packer.reusable(e):
                        raise MlxError(f"pack {e.pack[:10]} vanished from the remote; push again")
                    refs.append(e)
            manifest = Manifest(pointer.oid, pointer.size, tuple(refs))
            data = manifest.encode()
            if sharded:
                with lock:
                    batched.append((pointer.oid, pointer.size, data))
                    batched_pointers.append(pointer)
            else:
                put_bytes(remote, layout.manifest_key(pointer.oid), data, store.tmp_dir)
                with lock:
                    result.wire_bytes += len(data)
                    result.moved.append(pointer)
            index.add_local_object(manifest)
        except (MlxError, OSError) as exc:
            with lock:
                result.fail(pointer, exc)
        finally:
            if file_done:
                file_done(pointer)

    # Each plan is let go as its manifest is made, so a push of 100,000 small objects
    # never holds every chunk list and every manifest at once; then the push's chunks.
    # Format 2 makes manifests in memory (pure Python: a loop beats a pool's hand-offs);
    # format 1 writes one key per object, so its requests overlap.
    made = (plans.popleft() for _ in range(len(plans)))
    if sharded:
        for item in made:
            finish_object(item)
    else:
        parallel(finish_object, made, concurrency)
    packer.new.clear()
    if batched:
        repaired = {oid for oid, copy in copies.items() if copy.state not in (INTACT, MISSING)} | set(replace)
        _write_shards(remote, batched, batched_pointers, store, result, marks.shards, notice, repaired)
    index.close()
    confirm.remember(record, remote, result.moved, seen)
    return result


def _write_shards(
    remote: Remote,
    batched: list[tuple[str, int, bytes]],
    pointers: list[Pointer],
    store: Store,
    result: TransferResult,
    marked: frozenset[str],
    notice: Callable[[str], None] | None,
    repaired: set[str],
) -> None:
    """Put this push's manifests as shards; each object counts as moved once its shard is
    on the remote (a failure fails every object it would have held). A shard whose name a
    pending gc note lists (the same manifests as a marked shard) is announced first. The
    shards holding a damaged copy of a repaired object are rewritten (ShardDirectory.supersede)."""

    def announce(shard_id: str) -> None:
        if shard_id in marked:
            gc_marks.announce(remote, store.tmp_dir, shards=[shard_id], waiting=notice)

    directory = shards.directory(remote)
    try:
        written = directory.write(batched, store.tmp_dir, announce)
        fixed = {oid: data for oid, _, data in batched if oid in repaired}
        if fixed:
            directory.supersede(fixed, set(written), store.tmp_dir, announce)
    except (MlxError, OSError) as exc:
        for pointer in pointers:
            result.fail(pointer, exc)
        return
    try:
        directory.compact(store.tmp_dir, marked, announce)
    except (MlxError, OSError) as exc:  # the push is complete: merging can wait for the next one
        if notice is not None:
            notice(f"could not merge manifest shards on '{remote.display_url}' ({exc}); the next push tries again")
    result.wire_bytes += sum(len(data) for _, _, data in batched)
    result.moved.extend(pointers)
