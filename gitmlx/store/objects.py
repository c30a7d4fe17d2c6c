"""The local object store: verified objects named by their sha256 oid.

Owns: the on-disk layout under `<git-common-dir>/mlx/` (or a shared cache directory),
opening and re-verifying objects (`writer.py` inserts them, `sweep.py` clears the
temporary folders). See docs/local-store.md.
Must not: talk to a remote, run git, or print.

Invariants: an object appears under its final name only after its bytes were hashed to
that oid, written to a temporary file in the same file system (`Store.object_tmp_dir`),
fsynced and renamed with `os.replace`. Writers never share a temporary name, and "already
present" is success, so any number of processes may insert the same object at once.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import io
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gitmlx.errors import MlxError
from gitmlx.format.pointer import Pointer, is_valid_oid
from gitmlx.store import packs as store_packs
from gitmlx.store.blockio import (
    BLOCK_SIZE,
    CopiedRanges,
    hashes_to,
    sync_file_system,
    tmp_dir_beside,
)
from gitmlx.store.writer import ObjectWriter

#: A pack being written is finished once it holds this much, and a new one begun.
PACK_MAX = 128 * 1024 * 1024
#: More finished packs than this, and the smallest are merged (fewer files to search)...
PACKS_MERGE_ABOVE = 32
#: ... but never a pack this big or bigger: a merge must stay cheap, not rewrite the store.
MERGE_BELOW = 32 * 1024 * 1024
#: A lookup that misses lists `packs/` again at most this often (seconds) while the
#: folder looks unchanged: a clone misses on every object it has not fetched yet.
RESCAN_EVERY = 0.02
#: Temporary files untouched this long are a killed writer's leftovers (`Store.sweep_tmp`).
TMP_MAX_AGE = 24 * 3600


@dataclass(frozen=True)
class StoredObject:
    oid: str
    size: int


class Store:
    """A directory of objects: loose ones as `objects/<oid[0:2]>/<oid[2:4]>/<oid>`, small
    ones in store packs under `packs/`, plus `tmp/`. Thread-safe."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.unsynced = False
        self.objects_dir = self.root / "objects"
        self._objects_name = str(self.objects_dir)
        self.packs_dir = self.root / "packs"
        self.tmp_dir = self.root / "tmp"
        self._object_tmp: Path | None = None
        self._lock = threading.RLock()
        #: Finished packs by file name.
        self._packs: dict[str, store_packs.PackFile] = {}
        #: The same packs as a tuple, replaced (never changed) under the lock: lookups read
        #: it without taking the lock (every smudge and clean asks `has`).
        self._pack_list: tuple[store_packs.PackFile, ...] = ()
        #: Packs no longer in `packs/`: kept open (a reader may hold their descriptor).
        self._retired: list[store_packs.PackFile] = []
        self._packs_scanned: tuple[int, float] | None = None  # (dir mtime_ns, when)
        self._pending: store_packs.PendingPack | None = None
        #: Descriptors of finished pending packs, kept open for readers they handed out.
        self._retired_fds: list[int] = []
        self._sync_registered = False
        self._recovered = False
        #: Pack ranges copied out recently, whose pages leave the page cache later.
        self._copied = CopiedRanges()

    def path(self, oid: str) -> Path:
        """Where `oid` lives as a loose object. Refuses anything but 64 lowercase hex digits
        (no path tricks). A packed object has no path: see `file_path`."""
        if not is_valid_oid(oid):
            raise MlxError(f"refusing invalid oid {oid!r}")
        return self.objects_dir / oid[0:2] / oid[2:4] / oid

    def object_tmp_dir(self) -> Path:
        """Where objects are written before their rename: `tmp/`, or `objects/tmp/` when
        `objects/` is on another file system (a symlink the user made), since rename(2)
        cannot cross file systems (EXDEV). Decided once per Store."""
        if self._object_tmp is None:
            self._object_tmp = tmp_dir_beside(self.objects_dir, self.tmp_dir)
        return self._object_tmp

    def _pack_tmp_dir(self) -> Path:
        """Packs are written where a rename into `packs/` cannot cross file systems."""
        return tmp_dir_beside(self.packs_dir, self.tmp_dir)

    def mark_unsynced(self) -> None:
        """Remember to sync; at the latest when the process exits."""
        self.unsynced = True
        self._register_sync()

    def _register_sync(self) -> None:
        if not self._sync_registered:
            self._sync_registered = True
            atexit.register(self._sync_at_exit)

    def _sync_at_exit(self) -> None:
        try:
            self.sync()
        except OSError:
            pass  # a full disk: the pack stays in tmp/, recovered by the next process (no traceback)

    def sync(self) -> None:
        """End of a batch: finish the pack being written (visible to other processes from
        now on) and flush small loose objects written without their own fsync (syncfs(2))."""
        self.finish_pack()
        if not self.unsynced:
            return
        self.unsynced = False
        sync_file_system(self.objects_dir)

    # -- finding objects -------------------------------------------------------------------

    def _locate(self, oid: str) -> tuple[store_packs.PackFile | store_packs.PendingPack, int, int] | None:
        """The pack holding `oid` and where: the one being written, then finished ones."""
        if not is_valid_oid(oid):
            raise MlxError(f"refusing invalid oid {oid!r}")
        pending = self._pending
        if pending is not None and (at := pending.find(oid)) is not None:
            return pending, *at
        for pack in self._pack_list:
            if (at := pack.find(oid)) is not None:
                if os.fstat(pack.fd).st_nlink == 0:
                    # Rewritten by another process (prune, quarantine, merge) since it was
                    # loaded: what it holds may be gone. Look in what replaced it.
                    with self._lock:
                        if self._packs.get(pack.path.name) is pack:
                            self._retired.append(self._packs.pop(pack.path.name))
                            self._packs_updated()
                        self._packs_scanned = None
                    continue
                return pack, *at
        return None

    def _packs_updated(self) -> None:
        """Publish `_packs` to lock-free readers (the caller holds the lock)."""
        self._pack_list = tuple(self._packs.values())

    def _find(self, oid: str) -> tuple[store_packs.PackFile | store_packs.PendingPack, int, int] | None:
        found = self._locate(oid)
        if found is None:
            # Locate again even when this rescan saw no change: another thread's may have.
            self._rescan_packs()
            found = self._locate(oid)
        return found

    def _rescan_packs(self) -> bool:
        """Load packs other processes added (and drop deleted ones); False if `packs/`
        has not changed since the last look.

        A directory's mtime can stay the same across two changes within one clock tick,
        so an mtime less than a second older than the last look is not trusted.
        """
        if not self._recovered:
            self._recovered = True
            self._recover_orphans()
        try:
            mtime = os.stat(self.packs_dir).st_mtime_ns
        except FileNotFoundError:
            return False
        with self._lock:
            seen, now = self._packs_scanned, time.time()
            if seen is not None and seen[0] == mtime and (seen[1] * 1e9 > mtime + 1e9 or now - seen[1] < RESCAN_EVERY):
                return False
            self._packs_scanned = (mtime, now)
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
            self._packs_updated()
            return changed

    def _recover_orphans(self) -> None:
        """Name the objects of packs whose writer was killed before finishing them.

        A `git add` whose processes were all killed just after git wrote its index has
        pointers for objects only such a pack holds: their bytes are recovered (each
        verified) into a finished pack, then the orphan is deleted. A live writer holds
        its pack's lock, so it is never touched.
        """
        for tmp in (self.tmp_dir, self.packs_dir / "tmp"):
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
                    store_packs.write_pack(self._pack_tmp_dir(), self.packs_dir, objects, durable=True)  # type: ignore[arg-type]
                    os.unlink(tmp / name)
                except OSError:
                    continue  # disk full, read-only store: the orphan stays for next time

    def sweep_tmp(self, older_than: float = TMP_MAX_AGE) -> tuple[int, int]:
        """Delete what killed writers left in the temporary folders: entries untouched for
        `older_than` seconds (upload packs of a killed push, half-written objects, scratch
        stores). Store packs are recovered first; one whose writer still holds its lock
        (or where locks do not work) is kept. Returns (entries removed, bytes freed)."""
        from gitmlx.store.sweep import sweep_tmp_dirs  # only `git mlx prune` sweeps: the filter never loads it

        self._recover_orphans()
        folders = dict.fromkeys((self.tmp_dir, self.objects_dir / "tmp", self.packs_dir / "tmp"))
        return sweep_tmp_dirs(list(folders), older_than)

    def _where(self, oid: str) -> tuple[store_packs.PackFile | store_packs.PendingPack, int, int] | Path | None:
        """Where `oid` is: in a pack (pack, offset, size), loose (its path), or nowhere.

        Packs first (in memory), then the loose file, then packs other processes (or this
        process's finishing thread) named since the last look, then the loose file once
        more: a finishing pack of one object becomes a loose file meanwhile.
        """
        found = self._locate(oid)
        if found is not None:
            return found
        path = self._loose_name(oid)
        if _is_file(path):
            return Path(path)
        self._rescan_packs()
        found = self._locate(oid)
        if found is not None:
            return found
        return Path(path) if _is_file(path) else None

    def _loose_name(self, oid: str) -> str:
        """`path(oid)` as a string: lookups run once per file of a checkout, and building
        a Path cost more than the stat."""
        if not is_valid_oid(oid):
            raise MlxError(f"refusing invalid oid {oid!r}")
        return f"{self._objects_name}/{oid[0:2]}/{oid[2:4]}/{oid}"

    def has(self, oid: str) -> bool:
        return self._where(oid) is not None

    def size(self, oid: str) -> int:
        where = self._where(oid)
        if where is None:
            raise FileNotFoundError(errno.ENOENT, "no such object", oid)
        return os.stat(where).st_size if isinstance(where, Path) else where[2]

    def open(self, oid: str) -> BinaryIO:
        where = self._where(oid)
        if where is None:
            raise FileNotFoundError(errno.ENOENT, "no such object", oid)
        if isinstance(where, Path):
            return open(where, "rb")  # noqa: SIM115
        pack, offset, size = where
        return pack.reader(offset, size)  # type: ignore[return-value]

    def locate(self, oid: str) -> tuple[int, int, int] | str:
        """Where `oid`'s bytes are, for code that copies them with the kernel: (descriptor,
        offset, size) inside a pack, or a loose file's path. The descriptor stays open as
        long as this store does (a finished or replaced pack's too); FileNotFoundError when
        the store lacks the object."""
        where = self._where(oid)
        if where is None:
            raise FileNotFoundError(errno.ENOENT, "no such object", oid)
        if isinstance(where, Path):
            return str(where)
        pack, offset, size = where
        return pack.fd, offset, size

    def copied_out(self, where: tuple[int, int, int] | str) -> None:
        """The caller has copied these bytes (a `locate` answer) into the work tree: the
        store's copy is now a cold backup, so the pages of a pack range may leave the page
        cache once written back (`blockio.CopiedRanges` says why). A loose file's pages
        are left alone."""
        if not isinstance(where, str):
            self._copied.add(*where)

    def is_packed(self, oid: str) -> bool:
        return self._find(oid) is not None and not self.path(oid).is_file()

    def file_path(self, oid: str) -> Path:
        """A file holding exactly `oid`'s bytes (for code that needs a path): the loose
        object, made from the pack first when the object is packed."""
        path = self.path(oid)
        if not path.is_file() and self._find(oid) is not None:
            with self.open(oid) as src, self.writer(durable=False, loose=True) as writer:
                while block := src.read(BLOCK_SIZE):
                    writer.write(block)
                writer.commit(Pointer(oid, writer.size))
        return path

    # -- writing ---------------------------------------------------------------------------

    def writer(self, durable: bool = True, loose: bool = False) -> ObjectWriter:
        """A writer for one new object. `durable=False` for objects a remote also holds
        (downloads): they are not synced to disk (docs/local-store.md, "Durability").
        `loose=True`: a file of its own even when small."""
        return ObjectWriter(self, durable, loose)

    def add_packed(self, oid: str, data: bytes | bytearray, durable: bool) -> None:
        """Append a verified small object to this process's pack (found by this process
        at once, by others once `sync` finishes the pack)."""
        while True:
            with self._lock:
                if self._pending is None:
                    self._pending = store_packs.PendingPack(self._pack_tmp_dir())
                    self._register_sync()
                pending = self._pending
            # Written outside the store's lock; False when the pack was finished meanwhile.
            if pending.add(oid, data, durable):
                break
        if pending.end >= PACK_MAX:
            self.finish_pack()

    def finish_pack(self) -> None:
        """Name the pack being written (if any) so every process finds its objects."""
        with self._lock:
            pending, self._pending = self._pending, None
            if pending is None:
                return
            pending.close_for_adds()
            try:
                self._name_pack(pending)
            except BaseException:
                pending.open_for_adds()
                self._pending = pending  # nothing lost: the next finish tries again
                raise
            many = sum(p.file_size < MERGE_BELOW for p in self._packs.values()) > PACKS_MERGE_ABOVE
        if many:
            self.merge_packs()

    def _name_pack(self, pending: store_packs.PendingPack) -> None:
        """Make `pending`'s objects visible to every process (the caller holds the lock)."""
        if len(pending.entries) == 1 and self._unpack_one(pending):
            return
        final = pending.finish(self.packs_dir, close=False)
        if final is not None:
            try:
                self._packs[final.name] = store_packs.PackFile(final)
                self._packs_updated()
            except (OSError, store_packs.PackFormatError):
                pass  # found by the next rescan
        # Readers the pending pack handed out read its descriptor: it stays open.
        self._retired_fds.append(pending.fd)

    def _unpack_one(self, pending: store_packs.PendingPack) -> bool:
        """Store a pack's only object as a loose file instead: as cheap for a process that
        stored one object (a one-shot clean, a single fetch), and fewer packs. False when
        there is no room for the copy (a full disk): sealing the pack needs far less."""
        ((oid, (offset, size)),) = pending.entries.items()
        try:
            with pending.reader(offset, size) as src, self.writer(pending.durable, loose=True) as writer:
                while block := src.read(BLOCK_SIZE):
                    writer.write(block)
                writer.commit(Pointer(oid, size))
        except OSError:
            return False
        os.unlink(pending.tmp_path)
        self._retired_fds.append(pending.fd)
        return True

    def abandon(self) -> None:
        """Drop the pack being written, unnamed (a scratch store about to be deleted)."""
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            pending.abort()

    def insert_stream(self, stream: BinaryIO, expected: Pointer | None = None) -> Pointer:
        """Copy `stream` into the store in bounded memory; verify against `expected`."""
        with self.writer() as writer:
            while block := stream.read(BLOCK_SIZE):
                writer.write(block)
            return writer.commit(expected)

    def insert_file(self, path: Path) -> Pointer:
        with open(path, "rb") as stream:
            return self.insert_stream(stream)

    # -- removing ----------------------------------------------------------------------------

    def discard(self, oids: Iterable[str]) -> None:
        """Remove objects, loose or packed. A pack holding some of them is rewritten
        without them (new pack first, then the old one deleted), under the packs lock."""
        wanted = set(oids)
        for oid in wanted:
            try:
                os.unlink(self.path(oid))
            except FileNotFoundError:
                pass
        with self._lock:
            if self._pending is not None:
                for oid in wanted:
                    self._pending.entries.pop(oid, None)
        self._rescan_packs()
        with self._packs_locked():
            self._packs_scanned = None
            self._rescan_packs()
            with self._lock:
                affected = [p for p in self._packs.values() if any(p.find(o) for o in wanted)]
            for pack in affected:
                keep = [(oid, pack.reader(off, size)) for oid, off, size in pack.entries() if oid not in wanted]
                self._replace_packs([pack], keep)

    def quarantine(self, oid: str) -> None:
        """Move a corrupt object out of its valid name, keeping its bytes under `bad/`.

        Where `bad/` is on another file system than a loose object (a symlinked
        `objects/`), the rename cannot work, so it is deleted instead: what matters is
        that its valid name no longer holds wrong bytes.
        """
        bad_dir = self.root / "bad"
        bad_dir.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(self.path(oid), bad_dir / oid)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            os.unlink(self.path(oid))
        if self._find(oid) is not None:
            tmp = bad_dir / f".{oid}.{os.getpid()}-{secrets.token_hex(4)}"
            with self.open(oid) as src, open(tmp, "wb") as dst:
                while block := src.read(BLOCK_SIZE):
                    dst.write(block)
            os.replace(tmp, bad_dir / oid)
            self.discard([oid])

    def salvage_pack(self, pack: store_packs.PackFile) -> Path:
        """A pack whose index no longer hashes to its trailer: keep, in a new pack, every
        entry whose bytes still hash to its oid, and move the damaged file to `bad/`.
        Returns where it went."""
        bad_dir = self.root / "bad"
        bad_dir.mkdir(parents=True, exist_ok=True)
        with self._packs_locked():
            good = []
            for oid, offset, size in pack.entries():
                if offset + size <= pack.file_size and hashes_to(pack.reader(offset, size), oid):
                    good.append((oid, pack.reader(offset, size)))
            self._replace_packs([], good)
            moved = bad_dir / pack.path.name
            try:
                os.replace(pack.path, moved)
            except OSError:
                os.unlink(pack.path)
            with self._lock:
                if self._packs.pop(pack.path.name, None) is not None:
                    self._retired.append(pack)
                    self._packs_updated()
        return moved

    def merge_packs(self) -> None:
        """Merge small packs (under MERGE_BELOW) while there are more than PACKS_MERGE_ABOVE
        of them, smallest first, until half that many are left. Big packs stay as they are:
        their number grows with the store's size, not with the number of batches."""
        with self._packs_locked():
            self._packs_scanned = None
            self._rescan_packs()
            with self._lock:
                packs = sorted(
                    (p for p in self._packs.values() if p.file_size < MERGE_BELOW), key=lambda p: p.file_size
                )
            if len(packs) <= PACKS_MERGE_ABOVE:
                return
            merged = packs[: len(packs) - PACKS_MERGE_ABOVE // 2 + 1]
            objects = [(oid, p.reader(off, size)) for p in merged for oid, off, size in p.entries()]
            self._replace_packs(merged, objects)

    def _replace_packs(
        self, old: list[store_packs.PackFile], objects: list[tuple[str, store_packs.PackedObjectReader]]
    ) -> None:
        """Write `objects` as one new pack, then delete the `old` packs (fsynced first:
        the old packs may hold the only copy)."""
        final = store_packs.write_pack(self._pack_tmp_dir(), self.packs_dir, objects, durable=True)
        with self._lock:
            if final is not None and final.name not in self._packs:
                self._packs[final.name] = store_packs.PackFile(final)
                self._packs_updated()
            for pack in old:
                if pack.path != final:
                    try:
                        os.unlink(pack.path)
                    except FileNotFoundError:
                        pass
                    if self._packs.pop(pack.path.name, None) is not None:
                        self._retired.append(pack)
                        self._packs_updated()

    @contextlib.contextmanager
    def _packs_locked(self) -> Iterator[None]:
        """An exclusive lock on rewriting packs, across processes (flock on `packs/.lock`)."""
        import fcntl

        self.packs_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.packs_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- whole-store operations ---------------------------------------------------------------

    def verify(self, oid: str) -> bool:
        """Re-hash an object: True when its bytes still match its name."""
        return hashes_to(self.open(oid), oid)

    def iter_packs(self) -> list[store_packs.PackFile]:
        """Every finished pack, freshly listed."""
        self._packs_scanned = None
        self._rescan_packs()
        with self._lock:
            return list(self._packs.values())

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every object under a valid name, in oid order (temporary and stray files are
        skipped; an object both loose and packed is listed once)."""
        found: dict[str, int] = {}
        for pack in self.iter_packs():
            for oid, _, size in pack.entries():
                found.setdefault(oid, size)
        for obj in self._iter_loose():
            found[obj.oid] = obj.size
        for oid in sorted(found):
            yield StoredObject(oid, found[oid])

    def _iter_loose(self) -> Iterator[StoredObject]:
        if not self.objects_dir.is_dir():
            return
        for first in sorted(os.scandir(self.objects_dir), key=lambda e: e.name):
            if not first.is_dir(follow_symlinks=False):
                continue
            for second in sorted(os.scandir(first.path), key=lambda e: e.name):
                if not second.is_dir(follow_symlinks=False):
                    continue
                for entry in sorted(os.scandir(second.path), key=lambda e: e.name):
                    name = entry.name
                    if (
                        is_valid_oid(name)
                        and name[0:2] == first.name
                        and name[2:4] == second.name
                        and entry.is_file(follow_symlinks=False)
                    ):
                        yield StoredObject(name, entry.stat(follow_symlinks=False).st_size)


def _is_file(path: Path | str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False
