"""The store pack this process is appending small objects to, until it is named.

Owns: one store's pending pack (`packs.PendingPack`): appending verified small objects to
it, finding them before the pack is named, naming it (or, when it holds a single object,
storing that object as a loose file instead), and keeping the descriptors of named
pending packs open for readers they handed out.
Must not: hash object bytes (the store verifies before it appends), list or rewrite
finished packs (`packset.py`), talk to a remote, run git, or print.

Until the pack is named its objects are visible to this process only: other processes
find them once `Store.sync` (at the latest at exit) has named it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from gitmlx.format.pointer import Pointer
from gitmlx.store import packs as store_packs
from gitmlx.store.blockio import BLOCK_SIZE
from gitmlx.store.packset import PackedRange, PackSet

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from gitmlx.store.objects import Store

#: A pack being written is finished once it holds this much, and a new one begun.
PACK_MAX = 128 * 1024 * 1024


class PackAppender:
    """Appends small objects to one pending pack at a time (thread-safe).

    It shares the pack set's lock: naming a pack and registering it happen as one step
    for any thread that rescans the pack set.
    """

    def __init__(self, store: Store, packs: PackSet) -> None:
        #: Only for storing a lone object as a loose file (`_store_loose`).
        self._store = store
        self._packs = packs
        self._pending: store_packs.PendingPack | None = None
        #: Named pending packs, kept (their descriptors open) for readers they handed out,
        #: as long as this store lives; their entries are dropped (`_retire`).
        self._retired: list[store_packs.PendingPack] = []

    @property
    def pending(self) -> bool:
        """Whether a pack is being written (objects not yet visible to other processes)."""
        return self._pending is not None

    def find(self, oid: str) -> PackedRange | None:
        """Where the pending pack holds `oid` (without a lock), or None."""
        pending = self._pending
        if pending is not None and (at := pending.find(oid)) is not None:
            return PackedRange(pending, *at)
        return None

    def add(self, objects: Sequence[tuple[str, bytes | bytearray | memoryview]], durable: bool) -> None:
        """Append verified small objects (oid, bytes), in one write; name the pack once it
        holds PACK_MAX bytes."""
        while True:
            with self._packs.lock:
                if self._pending is None:
                    self._pending = store_packs.PendingPack(self._packs.pack_tmp_dir())
                pending = self._pending
            # Written outside the lock; False when the pack was named meanwhile.
            if pending.add_many(objects, durable):
                break
        if pending.end >= PACK_MAX:
            self.finish()

    def forget(self, oids: Iterable[str]) -> None:
        """Leave `oids` out of the pending pack's index (their bytes stay, unnamed)."""
        with self._packs.lock:
            if self._pending is not None:
                for oid in oids:
                    self._pending.entries.pop(oid, None)

    def finish(self) -> None:
        """Name the pending pack (if any) so every process finds its objects; merge small
        packs when there are too many."""
        with self._packs.lock:
            pending, self._pending = self._pending, None
            if pending is None:
                return
            pending.close_for_adds()
            try:
                self._name(pending)
            except BaseException:
                pending.open_for_adds()
                self._pending = pending  # nothing lost: the next finish tries again
                raise
            many = self._packs.too_many_small()
        if many:
            self._packs.merge()

    def _name(self, pending: store_packs.PendingPack) -> None:
        """Make `pending`'s objects visible to every process (the caller holds the lock)."""
        if len(pending.entries) == 1 and self._store_loose(pending):
            return
        final = pending.finish(self._packs.packs_dir, close=False)
        if final is not None:
            self._packs.register(final)
        # Readers the pending pack handed out read its descriptor: it stays open.
        self._retire(pending)

    def _retire(self, pending: store_packs.PendingPack) -> None:
        """Keep a named pending pack's descriptor, not its entries: the pack set (or the
        loose file) answers for its objects now, and a clone of 100,000 small files would
        hold ~25 MiB of them."""
        pending.entries = {}  # a new dict: a lookup racing this one just misses
        self._retired.append(pending)

    def _store_loose(self, pending: store_packs.PendingPack) -> bool:
        """Store a pack's only object as a loose file instead: as cheap for a process that
        stored one object (a one-shot clean, a single fetch), and fewer packs. False when
        there is no room for the copy (a full disk): sealing the pack needs far less.

        Fsynced before its rename, as the pack would have been: one file's fsync, not the
        syncfs(2) of the whole file system (with whatever other programs wrote) that every
        `git add` of one file would otherwise wait for at the end."""
        ((oid, (offset, size)),) = pending.entries.items()
        try:
            with (
                pending.reader(offset, size) as src,
                self._store.writer(pending.durable, loose=True, fsync=True) as writer,
            ):
                while block := src.read(BLOCK_SIZE):
                    writer.write(block)
                writer.commit(Pointer(oid, size))
        except OSError:
            return False
        os.unlink(pending.tmp_path)
        self._retire(pending)
        return True

    def abandon(self) -> None:
        """Drop the pending pack, unnamed (a scratch store about to be deleted)."""
        with self._packs.lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.abort()
