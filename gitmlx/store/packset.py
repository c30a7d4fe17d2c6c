"""The finished store packs of one store: which there are, where an object sits in them,
and their upkeep.

Owns: the registry of finished packs under `packs/` (loaded on first need, listed again
when the folder changes), finding an object in them without taking a lock, recovering the
objects of packs whose writer was killed (orphans), and rewriting packs: merging small
ones, dropping objects (prune, quarantine) and salvaging a damaged one. The file format
is `packs.py`'s; the pack this process is still appending to is `appender.py`'s.
Must not: touch loose objects, talk to a remote, run git, or print.

Rewriting always writes the new pack before deleting the old ones, under a lock shared by
every process (`packs/.lock`). A pack deleted by another process stays open here
("retired"): readers handed out earlier keep reading it.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from _thread import RLock  # threading's RLock: `threading` itself is not on the filter's start
from collections import namedtuple
from collections.abc import Iterable, Iterator
from pathlib import Path

from gitmlx.store import packs as store_packs
from gitmlx.store.blockio import hashes_to, tmp_dir_beside

#: More finished packs than this, and the smallest are merged (fewer files to search)...
PACKS_MERGE_ABOVE = 32
#: ... but never a pack this big or bigger: a merge must stay cheap, not rewrite the store.
MERGE_BELOW = 32 * 1024 * 1024
#: A lookup that misses lists `packs/` again at most this often (seconds) while the
#: folder looks unchanged: a clone misses on every object it has not fetched yet.
RESCAN_EVERY = 0.02


class PackedRange(namedtuple("_PackedRangeFields", ("pack", "offset", "size"))):
    """Where an object's bytes are inside a pack (a PackFile, or the PendingPack still being
    written): `offset` and `size` in bytes."""

    __slots__ = ()


class PackSet:
    """The finished packs of one store, shared by its threads.

    Lookups read an immutable tuple of packs without the lock (every clean and smudge asks
    whether the store has an object); changes to the registry happen under `lock`.
    """

    def __init__(self, packs_dir: Path, store_tmp_dir: Path) -> None:
        self.packs_dir = packs_dir
        self._store_tmp_dir = store_tmp_dir
        #: Held while the registry changes. The appender holds it too while it names its
        #: pack, so a lookup that rescans waits until that pack is registered.
        self.lock = RLock()
        #: Finished packs by file name.
        self._packs: dict[str, store_packs.PackFile] = {}
        #: The same packs as a tuple, replaced (never changed) under the lock.
        self._pack_list: tuple[store_packs.PackFile, ...] = ()
        #: Packs no longer in `packs/`: kept open (a reader may hold their descriptor).
        self._retired: list[store_packs.PackFile] = []
        #: (mtime_ns of `packs/`, time.time()) at the last listing; None: list again.
        self._last_scan: tuple[int, float] | None = None
        self._recovered = False

    def pack_tmp_dir(self) -> Path:
        """Where packs are written: a rename from there into `packs/` cannot cross file
        systems (`packs/tmp/` when the store's `tmp/` is on another one)."""
        return tmp_dir_beside(self.packs_dir, self._store_tmp_dir)

    # -- the registry ------------------------------------------------------------------------

    def packs(self) -> tuple[store_packs.PackFile, ...]:
        """The finished packs known here: a new tuple after every change, so that a caller
        can tell by identity whether a `rescan` (its own or another thread's) loaded any."""
        return self._pack_list

    def locate(self, oid: str) -> PackedRange | None:
        """Where a finished pack known here holds `oid`, without listing `packs/`."""
        for pack in self._pack_list:
            if (at := pack.find(oid)) is not None:
                if os.fstat(pack.fd).st_nlink == 0:
                    # Rewritten by another process (prune, quarantine, merge) since it was
                    # loaded: what it holds may be gone. Look in what replaced it.
                    with self.lock:
                        self._retire(pack)
                        self._last_scan = None
                    continue
                return PackedRange(pack, *at)
        return None

    def register(self, path: Path) -> None:
        """Add a pack this process has just named (others find it by their next rescan)."""
        with self.lock:
            try:
                self._packs[path.name] = store_packs.PackFile(path)
            except (OSError, store_packs.PackFormatError):
                return  # found by the next rescan
            self._publish()

    def _retire(self, pack: store_packs.PackFile) -> None:
        """Forget a pack that left `packs/`, keeping it open (the caller holds the lock)."""
        if self._packs.get(pack.path.name) is pack:
            self._retired.append(self._packs.pop(pack.path.name))
            self._publish()

    def _unregister(self, pack: store_packs.PackFile) -> None:
        """Forget the pack under `pack`'s name, deleted by this process; `pack` stays open
        (the caller holds the lock)."""
        if self._packs.pop(pack.path.name, None) is not None:
            self._retired.append(pack)
            self._publish()

    def _publish(self) -> None:
        """Publish `_packs` to lock-free readers (the caller holds the lock)."""
        self._pack_list = tuple(self._packs.values())

    def rescan(self) -> bool:
        """Load packs other processes added (and drop deleted ones); False if `packs/`
        has not changed since the last look.

        A directory's mtime can stay the same across two changes within one clock tick,
        so an mtime less than a second older than the last look is not trusted.
        """
        if not self._recovered:
            self._recovered = True
            self.recover_orphans()
        try:
            mtime = os.stat(self.packs_dir).st_mtime_ns
        except FileNotFoundError:
            return False
        with self.lock:
            seen, now = self._last_scan, time.time()
            if seen is not None and seen[0] == mtime and (seen[1] * 1e9 > mtime + 1e9 or now - seen[1] < RESCAN_EVERY):
                return False
            self._last_scan = (mtime, now)
            names = {n for n in os.listdir(self.packs_dir) if store_packs.is_pack_name(n)}
            changed = False
            for name in list(self._packs):
                if name not in names:
                    self._retired.append(self._packs.pop(name))
                    changed = True
            for name in sorted(names - self._packs.keys()):
                try:
                    self._packs[name] = store_packs.PackFile(self.packs_dir / name)
                    changed = True
                except (OSError, store_packs.PackFormatError):
                    continue  # deleted meanwhile, or not a whole pack: not ours to use
            self._publish()
            return changed

    def rescan_now(self) -> None:
        """List `packs/` again even if it looks unchanged."""
        self._last_scan = None
        self.rescan()

    def all_packs(self) -> list[store_packs.PackFile]:
        """Every finished pack, freshly listed."""
        self.rescan_now()
        with self.lock:
            return list(self._packs.values())

    def entries(self) -> Iterator[tuple[str, int]]:
        """(oid, size) of every object in every finished pack, freshly listed."""
        for pack in self.all_packs():
            for oid, _, size in pack.entries():
                yield oid, size

    def recover_orphans(self) -> None:
        """Name the objects of packs whose writer was killed before finishing them.

        A `git add` whose processes were all killed just after git wrote its index has
        pointers for objects only such a pack holds: their bytes are recovered (each
        verified) into a finished pack, then the orphan is deleted. A live writer holds
        its pack's lock, so it is never touched.
        """
        for tmp in (self._store_tmp_dir, self.packs_dir / "tmp"):
            try:
                names = [n for n in os.listdir(tmp) if n.startswith(store_packs.ORPHAN_PREFIX)]
            except OSError:
                continue
            for name in names:
                records = store_packs.orphaned_records(tmp / name)
                if records is None:
                    continue
                try:
                    objects = ((oid, io.BytesIO(data)) for oid, data in records)
                    store_packs.write_pack(self.pack_tmp_dir(), self.packs_dir, objects, durable=True)  # type: ignore[arg-type]
                    os.unlink(tmp / name)
                except OSError:
                    continue  # disk full, read-only store: the orphan stays for next time

    # -- upkeep --------------------------------------------------------------------------------

    def too_many_small(self) -> bool:
        """Whether enough small packs have gathered that `merge` has work to do."""
        with self.lock:
            return sum(p.file_size < MERGE_BELOW for p in self._packs.values()) > PACKS_MERGE_ABOVE

    def merge(self) -> None:
        """Merge small packs (under MERGE_BELOW) while there are more than PACKS_MERGE_ABOVE
        of them, smallest first, until half that many are left. Big packs stay as they are:
        their number grows with the store's size, not with the number of batches."""
        with self._rewriting():
            self.rescan_now()
            with self.lock:
                packs = sorted(
                    (p for p in self._packs.values() if p.file_size < MERGE_BELOW), key=lambda p: p.file_size
                )
            if len(packs) <= PACKS_MERGE_ABOVE:
                return
            merged = packs[: len(packs) - PACKS_MERGE_ABOVE // 2 + 1]
            objects = [(oid, p.reader(off, size)) for p in merged for oid, off, size in p.entries()]
            self._replace(merged, objects)

    def drop(self, oids: Iterable[str]) -> None:
        """Rewrite every finished pack holding some of `oids` without them."""
        wanted = set(oids)
        self.rescan()
        with self._rewriting():
            self.rescan_now()
            with self.lock:
                affected = [p for p in self._packs.values() if any(p.find(o) for o in wanted)]
            for pack in affected:
                keep = [(oid, pack.reader(off, size)) for oid, off, size in pack.entries() if oid not in wanted]
                self._replace([pack], keep)

    def salvage(self, pack: store_packs.PackFile, bad_dir: Path) -> Path:
        """A pack whose index no longer hashes to its trailer: keep, in a new pack, every
        entry whose bytes still hash to its oid, and move the damaged file to `bad_dir`.
        Returns where it went."""
        bad_dir.mkdir(parents=True, exist_ok=True)
        with self._rewriting():
            good = []
            for oid, offset, size in pack.entries():
                if offset + size <= pack.file_size and hashes_to(pack.reader(offset, size), oid):
                    good.append((oid, pack.reader(offset, size)))
            self._replace([], good)
            moved = bad_dir / pack.path.name
            try:
                os.replace(pack.path, moved)
            except OSError:
                os.unlink(pack.path)
            with self.lock:
                self._unregister(pack)
        return moved

    def _replace(
        self, old: list[store_packs.PackFile], objects: list[tuple[str, store_packs.PackedObjectReader]]
    ) -> None:
        """Write `objects` as one new pack, then delete the `old` packs (fsynced first:
        the old packs may hold the only copy)."""
        final = store_packs.write_pack(self.pack_tmp_dir(), self.packs_dir, objects, durable=True)
        with self.lock:
            if final is not None and final.name not in self._packs:
                self._packs[final.name] = store_packs.PackFile(final)
                self._publish()
            for pack in old:
                if pack.path != final:
                    try:
                        os.unlink(pack.path)
                    except FileNotFoundError:
                        pass
                    self._unregister(pack)

    @contextlib.contextmanager
    def _rewriting(self) -> Iterator[None]:
        """An exclusive lock on rewriting packs, across processes (flock on `packs/.lock`)."""
        import fcntl

        self.packs_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.packs_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
