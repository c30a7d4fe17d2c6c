"""The shard directory of a format 2 remote: which shard holds which object's manifest.

Owns: listing `shards/` (once per process and remote, again at most once after a miss or
a shard gone since the listing), reading each listed shard's entry table, serving
manifests out of shards (whole shards held in memory once several of their manifests were
asked for, else ranged reads of one manifest), and writing the shards of a push
(docs/storage-format.md, "Shards").
Must not: decide what to upload or fetch, or print. A manifest handed out here is still
checked by `manifest.decode` against the pointer by the caller: a shard only says where
the bytes are.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import struct
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from gitmlx.errors import IntegrityError, ObjectNotFound
from gitmlx.format import layout, shard
from gitmlx.remotes.base import Remote
from gitmlx.transfer import common

#: A shard up to this size is read whole at once (its table is most of a small read).
WHOLE_BELOW = 1024 * 1024
#: The first read of a larger shard: enough for the header and ~1,000 entries' table.
HEAD_BYTES = 64 * 1024
#: After this many ranged manifest reads from one shard, the whole shard is read instead:
#: a clone asks for many of a shard's manifests, a lazy read for one.
RANGED_BEFORE_WHOLE = 4
#: A pusher whose listing shows more shards than this merges the smallest ones, so the
#: listing (and a reader's table reads) stays about this long whatever the history.
COMPACT_ABOVE = 32
#: A miss lists `shards/` again only if the last listing is older than this (seconds).
RELIST_AFTER = 10.0
#: Whole shards held in memory by one directory, at most.
HOLD_LIMIT = 512 * 1024 * 1024
_READERS = 8
#: The first 8 bytes of an entry's oid as a big-endian number: a table sorted by oid is
#: sorted by it too, so a C-speed bisect over an array of them finds an entry.
_KEY = struct.Struct(">Q" + "x" * (shard.ENTRY.size - 8))


class Place(NamedTuple):
    """Where one manifest lies: `length` bytes at `offset` of shard `shard_id`."""

    shard_id: str
    size: int
    offset: int
    length: int


class _Table:
    """One shard's entry table, kept as its bytes (56 per entry) plus an 8-byte key per
    entry: a directory of 100,000 entries holds ~6.4 MiB, not an object per entry."""

    __slots__ = ("shard_id", "size", "table", "keys")

    def __init__(self, shard_id: str, size: int, table: bytes | memoryview) -> None:
        self.shard_id, self.size, self.table = shard_id, size, table
        self.keys = array("Q", (key for (key,) in _KEY.iter_unpack(table)))  # no list of ints first

    def find(self, raw: bytes) -> Place | None:
        key = int.from_bytes(raw[:8], "big")
        keys = self.keys
        i = bisect_left(keys, key)
        while i < len(keys) and keys[i] == key:
            start = i * shard.ENTRY.size
            if self.table[start : start + 32] == raw:
                _, size, offset, length = shard.ENTRY.unpack_from(self.table, start)
                return Place(self.shard_id, size, offset, length)
            i += 1
        return None

    def places(self) -> Iterator[tuple[str, Place]]:
        for raw, size, offset, length in shard.ENTRY.iter_unpack(self.table):
            yield raw.hex(), Place(self.shard_id, size, offset, length)


class ShardDirectory:
    """What this process knows of one remote's shards. Thread-safe: a download's workers
    share it. Tables are immutable (a shard's name is the sha256 of its bytes), so what
    was read stays true; only the set of shards changes, and a miss re-lists once.

    Over 250 lines on purpose: listing, table reads, held shards, writing, merging and a
    repair's rewrite all change one state (known shards, their tables, held bytes) under
    the same two locks; split apart, each part would need the others' locks and fields.
    """

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self._state = threading.Lock()
        self._loading = threading.Lock()
        self._holding = threading.Lock()
        self._listed = False
        self._listed_at = 0.0
        self._tables: dict[str, _Table] = {}  # shard id -> its table, for every shard whose table is known
        self._held: dict[str, bytes] = {}  # shard id -> its whole bytes
        self._held_bytes = 0
        self._ranged: dict[str, int] = {}
        self._ignored: frozenset[str] = frozenset()

    # -- what the remote holds ---------------------------------------------------------

    def places(self, oid: str) -> list[Place]:
        """Every shard place of `oid`'s manifest known after listing (once) the remote."""
        self._ensure_listed()
        raw = bytes.fromhex(oid)
        with self._state:
            tables = list(self._tables.values())
        found = [place for table in tables if (place := table.find(raw)) is not None]
        return [p for p in found if p.shard_id not in self._ignored] if self._ignored else found

    def ignore(self, shard_ids: frozenset[str]) -> None:
        """Find nothing in these shards (a pusher: `gc --remote` marked them for deletion,
        so an object only they hold counts as missing and is written again)."""
        self._ignored = frozenset(shard_ids)

    def relist(self) -> bool:
        """List `shards/` again after a miss, unless the last listing is younger than
        RELIST_AFTER (a clone missing many objects lists once, a long-lived reader still
        sees later pushes); whether it did."""
        with self._loading:
            if time.monotonic() - self._listed_at < RELIST_AFTER:
                return False
            self._refresh()
            return True

    def gone(self, shard_id: str) -> None:
        """A shard listed before is not there any more (merged, collected, replaced):
        forget it and list again, so its entries are found where they are now."""
        with self._loading:
            with self._state:
                if shard_id not in self._tables:
                    return  # another thread did this already
                del self._tables[shard_id]
                self._held_bytes -= len(self._held.pop(shard_id, b""))
            self._refresh()

    def manifest_bytes(self, place: Place) -> memoryview | bytes:
        """The bytes at `place` (ObjectNotFound when the shard is gone)."""
        with self._state:
            whole = self._held.get(place.shard_id)
            ranged = self._ranged.get(place.shard_id, 0)
            self._ranged[place.shard_id] = ranged + 1
        if whole is None and ranged >= RANGED_BEFORE_WHOLE:
            whole = self._hold(place.shard_id)
        if whole is not None:
            return memoryview(whole)[place.offset : place.offset + place.length]
        data = self.remote.read_range(layout.shard_key(place.shard_id), place.offset, place.length)
        if len(data) != place.length:
            raise IntegrityError(
                f"manifest shard {place.shard_id[:10]} on the remote is shorter than its table says",
                "run 'git mlx fsck --remote'",
            )
        return data

    def shard_ids(self) -> list[str]:
        return sorted(self.sizes())

    def sizes(self) -> dict[str, int]:
        """Shard id -> bytes, of every shard listed whose table was read."""
        self._ensure_listed()
        with self._state:
            return {shard_id: table.size for shard_id, table in self._tables.items()}

    def entries(self) -> Iterator[tuple[str, Place]]:
        """(oid, place) of every entry of every known shard (after listing once)."""
        self._ensure_listed()
        with self._state:
            tables = list(self._tables.values())
        for table in tables:
            yield from table.places()

    def whole(self, shard_id: str) -> bytes:
        """A shard's bytes, checked against its name (held if memory allows)."""
        data = self._hold(shard_id)
        return data if data is not None else self._read_whole(shard_id)

    def release(self) -> None:
        """Let go of the whole shards held (a checkout whose downloads are all in: a clone
        of 100,000 files held a 23 MiB shard to its end). Each table held as a view of
        its shard becomes bytes of its own; later reads start with ranged reads again."""
        with self._state:
            for table in self._tables.values():
                if isinstance(table.table, memoryview):
                    table.table = table.table.tobytes()
            self._held.clear()
            self._held_bytes = 0
            self._ranged.clear()

    # -- writing -------------------------------------------------------------------------

    def write(
        self,
        manifests: list[tuple[str, int, bytes]],
        tmp_dir: Path,
        before: Callable[[str], None] | None = None,
    ) -> list[str]:
        """Put shards holding these (oid, object size, manifest) and know them; their ids.
        `before` hears each id before its shard is put (a pusher announces an id a gc
        note marked: the same manifests make the same shard)."""
        ids = []
        for group in shard.split(manifests):
            ids.append(self._put(group, tmp_dir, before))
        return ids

    def _put(self, group: list[tuple[str, int, bytes]], tmp_dir: Path, before: Callable[[str], None] | None) -> str:
        """Write one shard to a temporary file as it is encoded (no second copy of its
        manifests in memory), then put it; its id."""
        tmp_dir.mkdir(parents=True, exist_ok=True)
        path = tmp_dir / f"shard-{os.getpid()}-{secrets.token_hex(8)}"
        digest = hashlib.sha256()
        size = 0
        try:
            with open(path, "wb") as out:
                parts = shard.encode_parts(group)
                head = next(parts)
                for part in itertools.chain([head], parts):
                    out.write(part)
                    digest.update(part)
                    size += len(part)
            shard_id = digest.hexdigest()
            if before is not None:
                before(shard_id)
            self.remote.put_file(layout.shard_key(shard_id), path)
        finally:
            path.unlink(missing_ok=True)
        with self._state:
            self._add(_Table(shard_id, size, bytes(memoryview(head)[shard.HEADER.size :])))
        return shard_id

    def compact(self, tmp_dir: Path, marked: frozenset[str], announce: Callable[[str], None] | None = None) -> int:
        """Past COMPACT_ABOVE shards, merge the smallest (never one a gc note marks) into one
        new shard, written before any input is deleted; how many shards were merged.

        Every entry is kept (dead ones too: only gc decides what is dead, with its grace
        period), so a reader or pusher relying on an input finds the same manifest in the
        merged shard; a reader that finds an input gone lists again (`gone`). Two pushers
        merging at once write two merged shards holding the same entries (harmless) and
        delete each input once; one that finds an input already gone merges nothing."""
        sizes = {i: n for i, n in self.sizes().items() if i not in marked}
        if len(sizes) + len(marked) <= COMPACT_ABOVE:
            return 0
        inputs: list[str] = []
        total = 0
        for size, shard_id in sorted((n, i) for i, n in sizes.items()):
            if len(inputs) > len(sizes) - COMPACT_ABOVE // 2 or total + size > shard.WRITE_BYTES:
                break
            inputs.append(shard_id)
            total += size
        if len(inputs) < 2:
            return 0
        entries: list[tuple[str, int, bytes]] = []
        try:
            for shard_id in inputs:
                data = memoryview(self.whole(shard_id))
                entries += [(e.oid, e.size, bytes(data[e.offset : e.offset + e.length])) for e in shard.decode(data)]
        except ObjectNotFound:
            return 0  # another pusher is merging these: leave it to them
        written = set(self.write(entries, tmp_dir, announce))
        for shard_id in inputs:
            if shard_id not in written:
                self.remote.delete(layout.shard_key(shard_id))
        return len(inputs)

    def supersede(
        self, manifests: dict[str, bytes], keep: set[str], tmp_dir: Path, announce: Callable[[str], None] | None
    ) -> None:
        """A repair: rewrite each shard (other than `keep`, the repair's own) that names one
        of these oids with their new manifests, then delete it, as a format 1 repair
        rewrites the key. Otherwise the damaged entry stays, and a reader that tries it
        first fails on its packs. Every other entry is kept (the merge argument of
        docs/storage-format.md); a shard that cannot be read whole is left as it is."""
        by_shard: dict[str, set[str]] = {}
        for oid in manifests:
            for place in self.places(oid):
                if place.shard_id not in keep:
                    by_shard.setdefault(place.shard_id, set()).add(oid)
        for shard_id, oids in sorted(by_shard.items()):
            try:
                data = memoryview(self.whole(shard_id))
                old = shard.decode(data)
            except (ObjectNotFound, IntegrityError):
                continue
            entries = [
                (e.oid, e.size, manifests[e.oid] if e.oid in oids else bytes(data[e.offset : e.offset + e.length]))
                for e in old
            ]
            if shard_id not in self.write(entries, tmp_dir, announce):
                self.remote.delete(layout.shard_key(shard_id))

    # -- reading the listing and tables ------------------------------------------------

    def _ensure_listed(self) -> None:
        if self._listed:
            return
        with self._loading:
            if not self._listed:
                self._refresh()

    def _refresh(self) -> None:
        """List `shards/` and read the tables of shards not known yet (caller holds _loading)."""
        listed = {}
        for entry in self.remote.list(layout.SHARDS_PREFIX):
            shard_id = layout.shard_id_from_key(entry.key)
            if shard_id is not None:
                listed[shard_id] = entry.size
        with self._state:
            new = [(i, size) for i, size in listed.items() if i not in self._tables]
        if len(new) > 1:
            with ThreadPoolExecutor(max_workers=min(_READERS, len(new))) as pool:
                list(pool.map(lambda item: self._read_table(*item), new))
        else:
            for item in new:
                self._read_table(*item)
        self._listed = True
        self._listed_at = time.monotonic()

    def _read_table(self, shard_id: str, size: int) -> None:
        key = layout.shard_key(shard_id)
        try:
            if size <= WHOLE_BELOW:
                whole: bytes | None = self._read_whole(shard_id, size)
                table = shard.check(whole)
            else:
                whole = None
                data = self.remote.read_range(key, 0, HEAD_BYTES)
                end = shard.table_length(shard.entry_count(data))
                if end > len(data):  # the whole table in a second read: one buffer, not two joined
                    data = self.remote.read_range(key, 0, end)
                table = shard.check_table(data, size)
        except ObjectNotFound:
            return  # deleted since the listing (merged or collected): its entries are elsewhere
        with self._state:
            if whole is not None and not self._keep(shard_id, whole):
                table = table.tobytes()  # not a view of a whole shard nothing keeps
            self._add(_Table(shard_id, size, table))

    def _read_whole(self, shard_id: str, size: int | None = None) -> bytes:
        if size is None:
            with self._state:
                size = self._tables[shard_id].size if shard_id in self._tables else None
        data = self.remote.read_range(layout.shard_key(shard_id), 0, size if size is not None else shard.MAX_MANIFEST)
        if hashlib.sha256(data).hexdigest() != shard_id:
            raise IntegrityError(
                f"manifest shard {shard_id[:10]} on the remote does not match its name",
                "the remote copy is damaged: run 'git mlx fsck --remote' and push again",
            )
        return data

    def _hold(self, shard_id: str) -> bytes | None:
        # One whole read at a time: the workers of a check or a download asking for the
        # same shard wait for the first to hold it (eight of them each read a 23 MiB
        # shard at once in a `git mlx status` of 100,000 files).
        with self._holding:
            with self._state:
                if shard_id in self._held:
                    return self._held[shard_id]
                known = self._tables.get(shard_id)
                if self._held_bytes + (known.size if known is not None else HOLD_LIMIT) > HOLD_LIMIT:
                    return None
            data = self._read_whole(shard_id)
            with self._state:
                known = self._tables.get(shard_id)
                if self._keep(shard_id, data) and known is not None:
                    known.table = memoryview(data)[shard.HEADER.size : shard.HEADER.size + len(known.table)]
                return self._held.get(shard_id, data)

    def _add(self, table: _Table) -> None:
        self._tables.setdefault(table.shard_id, table)

    def _keep(self, shard_id: str, data: bytes) -> bool:
        """Hold `data` if memory allows; whether `data` itself is held now."""
        if shard_id not in self._held and self._held_bytes + len(data) <= HOLD_LIMIT:
            self._held[shard_id] = data
            self._held_bytes += len(data)
        return self._held.get(shard_id) is data


#: By remote identity (the API opens a remote per file: they share what was listed): the
#: marker reads it was made after, and the directory.
_directories: dict[str, tuple[int, ShardDirectory]] = {}
_directories_lock = threading.Lock()


def release_held() -> None:
    """Every shard directory of this process lets go of its whole shards (`release`)."""
    with _directories_lock:
        known = [found for _, found in _directories.values()]
    for found in known:
        found.release()
    if known:
        from gitmlx.osutil import oscalls

        oscalls.give_back_free_memory()


def directory(remote: Remote) -> ShardDirectory:
    """The one shard directory of this `remote` in this process (a new one whenever the
    remote's format marker is read again: `common.check_readable`)."""
    common.check_readable(remote)
    generation = common.READS.get(remote.identity, 0)
    with _directories_lock:
        found = _directories.get(remote.identity)
        if found is None or found[0] != generation:
            found = _directories[remote.identity] = (generation, ShardDirectory(remote))
        found[1].remote = remote  # the caller's (equivalent: the same identity)
        return found[1]
