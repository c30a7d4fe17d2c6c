"""The local object store: verified objects named by their sha256 oid.

Owns: the on-disk layout under `<git-common-dir>/mlx/` (or a shared cache directory),
loose objects, finding, opening and re-verifying an object wherever it is (a loose file,
the pack being written, a finished pack), removing objects, and syncing a batch. See
docs/local-store.md. It hands the work to its parts: `writer.py` inserts one object,
`appender.py` fills the pack being written, `packset.py` keeps the finished packs, and
`sweep.py` clears the temporary folders.
Must not: talk to a remote, run git, or print.

Invariants: an object appears under its final name only after its bytes were hashed to
that oid, written to a temporary file in the same file system (`Store.object_tmp_dir`),
fsynced and renamed with `os.replace`. Writers never share a temporary name, and "already
present" is success, so any number of processes may insert the same object at once.
"""

from __future__ import annotations

import atexit
import errno
import os
import stat
from collections import namedtuple
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from gitmlx import trace
from gitmlx.errors import MlxError
from gitmlx.format.pointer import Pointer, is_valid_oid
from gitmlx.store import packs as store_packs
from gitmlx.store.appender import PackAppender
from gitmlx.store.blockio import BLOCK_SIZE, CopiedRanges, hashes_to, sync_file_system, tmp_dir_beside
from gitmlx.store.packset import PackedRange, PackSet
from gitmlx.store.worktreelinks import WorktreeLinks
from gitmlx.store.writer import ObjectWriter

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from typing import BinaryIO

#: Temporary files untouched this long are a killed writer's leftovers (`Store.sweep_tmp`).
TMP_MAX_AGE = 24 * 3600


class StoredObject(namedtuple("_StoredObjectFields", ("oid", "size"))):
    """An object the store holds: its `oid` and `size` in bytes."""

    __slots__ = ()


class Store:
    """A directory of objects: loose ones as `objects/<oid[0:2]>/<oid[2:4]>/<oid>`, small
    ones in store packs under `packs/`, plus `tmp/`. Thread-safe.

    Past 250 lines on purpose: it is the one front door every layer uses, and each method
    is a few lines that fix the lookup order (pending pack, finished packs, loose file) or
    hand the work to the pack set, the appender, the writer or the sweep. Splitting it would
    make each caller pick among several objects for one question.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.unsynced = False
        self.objects_dir = self.root / "objects"
        self._objects_name = str(self.objects_dir)
        self.packs_dir = self.root / "packs"
        self.tmp_dir = self.root / "tmp"
        self._object_tmp: Path | None = None
        #: The finished packs: registry, lookups and upkeep.
        self._pack_set = PackSet(self.packs_dir, self.tmp_dir)
        #: The pack this process is appending small objects to.
        self._appender = PackAppender(self, self._pack_set)
        self._sync_registered = False
        #: Pack ranges copied out recently, whose pages leave the page cache later.
        self._copied = CopiedRanges()
        #: A thin checkout's work-tree files, read as unverified chunk sources only.
        self.worktree_links: WorktreeLinks | None = None

    def check_root(self) -> Store:
        """Refuse a store folder that cannot be one, naming what is there and the fix (a
        write into it would otherwise fail later with a misleading cause)."""
        root = self.root
        if not os.path.lexists(root):
            return self  # created on first write
        if root.is_symlink() and not root.exists():
            try:
                target = os.readlink(root)
            except OSError:
                target = "?"
            raise MlxError(
                f"the local store '{root}' is a symlink to '{target}', which does not exist or loops",
                f"create that folder, or remove the link ('rm {root}'; the store starts empty)",
            )
        if not root.is_dir():
            raise MlxError(
                f"the local store '{root}' is not a folder",
                f"move it aside ('mv {root} {root}.bak'); the store starts empty",
            )
        return self

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

    # -- syncing -------------------------------------------------------------------------------

    def mark_unsynced(self) -> None:
        """Remember to sync; at the latest when the process exits."""
        self.unsynced = True
        self._register_sync()

    def _register_sync(self) -> None:
        if not self._sync_registered:
            self._sync_registered = True
            atexit.register(self._sync_at_exit)

    def _forget_exit_sync(self) -> None:
        """Nothing is left to sync: drop the exit hook, and with it the hold it has on
        this store (a store an API caller drops is then freed, its packs' descriptors
        closed). A writer registers after it made its pack or set `unsynced`, so either
        this sees that state under the lock, or the writer registers again."""
        with self._pack_set.lock:
            if self._sync_registered and not self.unsynced and not self._appender.pending:
                atexit.unregister(self._sync_at_exit)
                self._sync_registered = False

    def _sync_at_exit(self) -> None:
        try:
            self.sync()
        except OSError:
            pass  # a full disk: the pack stays in tmp/, recovered by the next process (no traceback)

    def sync(self) -> None:
        """End of a batch: finish the pack being written (visible to other processes from
        now on) and flush small loose objects written without their own fsync (syncfs(2))."""
        self.finish_pack()
        if self.unsynced:
            self.unsynced = False
            sync_file_system(self.objects_dir)
        self._forget_exit_sync()

    # -- finding objects -------------------------------------------------------------------

    def _locate(self, oid: str) -> PackedRange | None:
        """The pack holding `oid` and where: the one being written, then finished ones."""
        if not is_valid_oid(oid):
            raise MlxError(f"refusing invalid oid {oid!r}")
        return self._locate_valid(oid)

    def _locate_valid(self, oid: str) -> PackedRange | None:
        """`_locate` of an oid already checked."""
        found = self._appender.find(oid)
        return found if found is not None else self._pack_set.locate(oid)

    def _find(self, oid: str) -> PackedRange | None:
        found = self._locate(oid)
        if found is None:
            # Locate again even when this rescan saw no change: another thread's may have.
            self._pack_set.rescan()
            found = self._locate(oid)
        return found

    def _where(self, oid: str) -> PackedRange | Path | None:
        """Where `oid` is: in a pack, loose (its path), or nowhere.

        Packs first (in memory), then the loose file, then packs other processes (or this
        process's finishing thread) named since the last look, then the loose file once
        more: a finishing pack of one object becomes a loose file meanwhile. The packs are
        searched again only when the list of them changed since the first search (most
        lookups of a clone miss, and a search tries every pack).
        """
        path = self._loose_name(oid)  # checks the oid, once: it runs for every file of a checkout
        packs = self._pack_set.packs()  # before the first look: any pack loaded after it counts
        found = self._locate_valid(oid)
        if found is not None:
            return found
        if _is_file(path):
            return Path(path)
        self._pack_set.rescan()
        if self._pack_set.packs() is not packs:  # this or another thread loaded some
            found = self._locate_valid(oid)
            if found is not None:
                return found
        elif (found := self._appender.find(oid)) is not None:
            return found
        return Path(path) if _is_file(path) else None

    def _loose_name(self, oid: str) -> str:
        """`path(oid)` as a string: lookups run once per file of a checkout, and building
        a Path cost more than the stat."""
        if not is_valid_oid(oid):
            raise MlxError(f"refusing invalid oid {oid!r}")
        return f"{self._objects_name}/{oid[0:2]}/{oid[2:4]}/{oid}"

    def _existing(self, oid: str) -> PackedRange | Path:
        """`_where`, or FileNotFoundError when the store lacks `oid`."""
        where = self._where(oid)
        if where is None:
            raise FileNotFoundError(errno.ENOENT, "no such object", oid)
        return where

    def has(self, oid: str) -> bool:
        return self._where(oid) is not None

    def size(self, oid: str) -> int:
        where = self._existing(oid)
        return os.stat(where).st_size if isinstance(where, Path) else where.size

    def open(self, oid: str) -> BinaryIO:
        where = self._existing(oid)
        if isinstance(where, Path):
            return open(where, "rb")  # noqa: SIM115
        return where.pack.reader(where.offset, where.size)  # type: ignore[return-value]

    def has_chunk_source(self, oid: str) -> bool:
        """Whether `oid`'s bytes are here or in a thin checkout's work tree, to take
        chunks from (each chunk is hashed before use: see `open_chunk_source`)."""
        return self.has(oid) or (self.worktree_links is not None and self.worktree_links.has(oid))

    def open_chunk_source(self, oid: str) -> BinaryIO:
        """`oid`'s bytes as they are, for reading chunks that are each verified against
        their chunk hash: the stored object, else a thin checkout's work-tree file
        (`worktreelinks`), which may have been edited. FileNotFoundError when neither."""
        try:
            return self.open(oid)
        except FileNotFoundError:
            found = self.worktree_links.open(oid) if self.worktree_links is not None else None
            if found is None:
                raise
            return found

    def locate(self, oid: str) -> tuple[int, int, int] | str:
        """Where `oid`'s bytes are, for code that copies them with the kernel: (descriptor,
        offset, size) inside a pack, or a loose file's path. The descriptor stays open as
        long as this store does (a finished or replaced pack's too); FileNotFoundError when
        the store lacks the object."""
        where = self._existing(oid)
        if isinstance(where, Path):
            return str(where)
        return where.pack.fd, where.offset, where.size

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

    def writer(
        self, durable: bool = True, loose: bool = False, resume_as: str | None = None, fsync: bool = False
    ) -> ObjectWriter:
        """A writer for one new object. `durable=False` for objects a remote also holds
        (downloads): they are not synced to disk (docs/local-store.md, "Durability").
        `loose=True`: a file of its own even when small. `resume_as=OID`: a download that
        a later one may continue (`ObjectWriter.resume_prefix`). `fsync=True`: a durable
        object is fsynced before its rename even when small."""
        return ObjectWriter(self, durable, loose, resume_as, fsync)

    def add_packed(self, oid: str, data: bytes | bytearray, durable: bool) -> None:
        """Append a verified small object to this process's pack (found by this process
        at once, by others once `sync` finishes the pack)."""
        self.add_packed_many([(oid, data)], durable)

    def add_packed_many(self, objects: Sequence[tuple[str, bytes | bytearray | memoryview]], durable: bool) -> None:
        """`add_packed` for several verified objects (oid, bytes), written at once."""
        try:
            self._appender.add(objects, durable)
        finally:  # after the pack exists: see _forget_exit_sync
            self._register_sync()

    def finish_pack(self) -> None:
        """Name the pack being written (if any) so every process finds its objects."""
        self._appender.finish()

    def abandon(self) -> None:
        """Drop the pack being written, unnamed (a scratch store about to be deleted)."""
        self._appender.abandon()

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
        self._appender.forget(wanted)
        self._pack_set.drop(wanted)

    def quarantine(self, oid: str) -> None:
        """Move a corrupt object out of its valid name, keeping its bytes under `bad/`.

        Where `bad/` is on another file system than a loose object (a symlinked
        `objects/`), the rename cannot work, so it is deleted instead: what matters is
        that its valid name no longer holds wrong bytes.
        """
        if trace.ON:
            trace.log("store", "object %s does not hash to its name: quarantined in bad/", oid)
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
            tmp = bad_dir / f".{oid}.{os.getpid()}-{os.urandom(4).hex()}"
            with self.open(oid) as src, open(tmp, "wb") as dst:
                while block := src.read(BLOCK_SIZE):
                    dst.write(block)
            os.replace(tmp, bad_dir / oid)
            self.discard([oid])

    def salvage_pack(self, pack: store_packs.PackFile) -> Path:
        """A pack whose index no longer hashes to its trailer: keep, in a new pack, every
        entry whose bytes still hash to its oid, and move the damaged file to `bad/`.
        Returns where it went."""
        return self._pack_set.salvage(pack, self.root / "bad")

    def merge_packs(self) -> None:
        """Merge small finished packs into fewer (`PackSet.merge` says which)."""
        self._pack_set.merge()

    def sweep_tmp(self, older_than: float = TMP_MAX_AGE) -> tuple[int, int]:
        """Delete what killed writers left in the temporary folders: entries untouched for
        `older_than` seconds (upload packs and journals of a killed push, half-written
        objects and downloads, scratch stores). Store packs are recovered first; one whose writer still holds its lock
        (or where locks do not work) is kept. Returns (entries removed, bytes freed)."""
        from gitmlx.format import layout
        from gitmlx.store.sweep import sweep_tmp_dirs  # only `git mlx prune` sweeps: the filter never loads it

        self._pack_set.recover_orphans()
        # uploads/: journals of multipart uploads; one a day old is never resumed any more.
        folders = dict.fromkeys((self.tmp_dir, self.objects_dir / "tmp", self.packs_dir / "tmp", self.root / "uploads"))
        # A store that is also a directory remote (the embedded remote beside a bare
        # repository): the remote's writes in tmp/ are not the store's to sweep.
        others = (layout.DIRECTORY_WRITE_PREFIX,) if self.holds_remote() else ()
        return sweep_tmp_dirs(list(folders), older_than, others)

    def holds_remote(self) -> bool:
        """Whether this store's folder is also a directory remote's (its format marker is
        here): the embedded remote beside a bare repository is that repository's store too.
        The two keep apart by name (docs/local-store.md, "A store that is also a remote")."""
        from gitmlx.format import layout  # not at module level: the filter never asks

        return os.path.lexists(self.root / layout.FORMAT_KEY)

    # -- whole-store operations ---------------------------------------------------------------

    def verify(self, oid: str) -> bool:
        """Re-hash an object: True when its bytes still match its name."""
        return hashes_to(self.open(oid), oid)

    def iter_packs(self) -> list[store_packs.PackFile]:
        """Every finished pack, freshly listed."""
        return self._pack_set.all_packs()

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every object under a valid name, in oid order (temporary and stray files are
        skipped; an object both loose and packed is listed once)."""
        found: dict[str, int] = {}
        for oid, size in self._pack_set.entries():
            found.setdefault(oid, size)
        for obj in _loose_objects(self.objects_dir):
            found[obj.oid] = obj.size
        for oid in sorted(found):
            yield StoredObject(oid, found[oid])


def _loose_objects(objects_dir: Path) -> Iterator[StoredObject]:
    """The loose objects under `objects_dir`, in oid order (stray names are skipped)."""
    for prefix, entry in sharded_files(objects_dir):
        if is_valid_oid(entry.name) and entry.name[0:4] == prefix:
            yield StoredObject(entry.name, entry.stat(follow_symlinks=False).st_size)


def sharded_files(folder: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """The files of a `<xx>/<yy>/<name>` layout (the store's and Git LFS's), in name order,
    each with its folders' names `xxyy`. Symlinks are not followed."""
    if not folder.is_dir():
        return
    for first in sorted(os.scandir(folder), key=lambda e: e.name):
        if not first.is_dir(follow_symlinks=False):
            continue
        for second in sorted(os.scandir(first.path), key=lambda e: e.name):
            if not second.is_dir(follow_symlinks=False):
                continue
            for entry in sorted(os.scandir(second.path), key=lambda e: e.name):
                if entry.is_file(follow_symlinks=False):
                    yield first.name + second.name, entry


def _is_file(path: Path | str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False
