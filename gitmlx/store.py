"""The local object store: verified objects named by their sha256 oid.

Owns: the on-disk layout under `<git-common-dir>/mlx/` (or a shared cache directory),
atomic insertion while hashing, opening and re-verifying objects. See docs/local-store.md.
Must not: talk to a remote, run git, or print.

Invariants: an object appears under its final name only after its bytes were hashed to
that oid, written to a temporary file in the same file system (`Store.object_tmp_dir`),
fsynced and renamed with `os.replace`. Writers never share a temporary name, and "already
present" is success, so any number of processes may insert the same object at once.
"""

from __future__ import annotations

import atexit
import errno
import hashlib
import os
import queue
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from gitmlx.errors import IntegrityError, MlxError
from gitmlx.pointer import Pointer, is_valid_oid

#: Read and write size for streaming; large enough that per-call overhead vanishes.
BLOCK_SIZE = 1024 * 1024
#: Objects at least this big are fsynced before their rename; smaller ones are synced
#: together by `Store.sync()` at the end of the batch (one fsync per 128 KiB file made
#: `git add` of 2,000 files several times slower). docs/local-store.md, "Durability".
FSYNC_EACH = 8 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    oid: str
    size: int


class BackgroundWriter:
    """A file written by a worker thread, so the caller's work and the disk writes
    overlap (hashing and writing both release the GIL). With `digest`, the worker also
    hashes each block (the caller then never touches the bytes again). Every 64 MiB the
    worker asks the kernel to write back what it has (fdatasync), so a final fsync only
    waits for the tail. At most a few blocks are queued: memory stays bounded.
    """

    SYNC_EVERY = 64 * 1024 * 1024

    def __init__(
        self,
        fd: int,
        digest: hashlib._Hash | None = None,  # type: ignore[name-defined]
        sync: bool = True,
        recycle: Callable[[bytearray], None] | None = None,
    ) -> None:
        self._fd = fd
        self._sync = sync
        #: Given each bytearray block once written, so the producer can fill it again.
        self._recycle = recycle
        self._digest = digest
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=4)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="gitmlx-writer", daemon=True)
        self._thread.start()

    def write(self, block: bytes | memoryview) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(block)

    def _run(self) -> None:
        unsynced = 0
        while (block := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining so the producer never blocks forever
            try:
                if self._digest is not None:
                    self._digest.update(block)
                view = memoryview(block)
                while view:
                    view = view[os.write(self._fd, view) :]
                unsynced += len(block)
                if self._recycle is not None and isinstance(block, bytearray):
                    self._recycle(block)
                if self._sync and unsynced >= self.SYNC_EVERY:
                    os.fdatasync(self._fd)
                    unsynced = 0
            except OSError as exc:
                self._error = exc

    def finish(self) -> None:
        """Wait for every queued block; raise the first write error."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


class BlockFiller:
    """Copies writes once into blocks of `size` bytes and hands each full block to `emit`.

    A block goes on as it is (no second copy) and, once the writer thread has written
    it, comes back through `recycle` to be filled again: no fresh memory is faulted in
    per block, and a small file never allocates more than it holds.
    """

    def __init__(self, emit: Callable[[bytearray], None], size: int = 1024 * 1024) -> None:
        self._emit = emit
        self.size = size
        self._block = bytearray()
        self.fill = 0
        self._free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()

    def recycle(self, block: bytearray) -> None:
        self._free.put(block)

    def write(self, view: memoryview) -> None:
        while view:
            n = min(len(view), self.size - self.fill)
            self._block[self.fill : self.fill + n] = view[:n]
            self.fill += n
            view = view[n:]
            if self.fill == self.size:
                self._emit(self._block)
                try:
                    self._block = self._free.get_nowait()
                except queue.Empty:
                    self._block = bytearray()
                self.fill = 0

    def take_tail(self) -> memoryview:
        """The partial last block (a view: write or copy it before the next `write`)."""
        tail = memoryview(self._block)[: self.fill]
        self.fill = 0
        return tail


class ObjectWriter:
    """Streams bytes into a temporary file while hashing; `commit` names it by its oid.

    Use as a context manager: leaving without `commit` (an exception, a kill) removes
    the temporary file, so nothing half-written is ever visible under an oid. Bytes are
    gathered into 1 MiB blocks; past the first block, writes go through a worker thread
    so hashing and writing overlap.
    """

    BLOCK = 1024 * 1024

    def __init__(self, store: Store, durable: bool = True) -> None:
        self._store = store
        self.durable = durable
        self._hash = hashlib.sha256()
        self.size = 0
        self._committed = False
        self.tmp_path = store.object_tmp_dir() / f"obj-{os.getpid()}-{secrets.token_hex(8)}"
        self._fd: int | None = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._blocks = BlockFiller(self._emit, self.BLOCK)
        self._background: BackgroundWriter | None = None

    def write(self, data: bytes | memoryview) -> None:
        assert self._fd is not None, "writer already closed"
        view = memoryview(data).cast("B")
        self.size += len(view)
        if not self._blocks.fill and len(view) >= self.BLOCK // 2 and isinstance(view.obj, bytes):
            # Large and immutable (a read's own buffer): hashed and queued as it is.
            self._emit(view)
            return
        self._blocks.write(view)

    def _emit(self, block: bytes | bytearray | memoryview) -> None:
        self._hash.update(block)
        if self._background is None:
            self._background = BackgroundWriter(
                self._fd,  # type: ignore[arg-type]
                sync=self.durable,
                recycle=self._blocks.recycle,
            )
        self._background.write(block)

    def _finish_writes(self) -> None:
        """Hash and write what is pending; wait for the worker."""
        tail = self._blocks.take_tail()
        if self._background is None:
            self._hash.update(tail)
            while tail:
                tail = tail[os.write(self._fd, tail) :]  # type: ignore[arg-type]
            return
        if tail:
            self._emit(bytes(tail))  # a copy: only whole blocks go back to the filler
        background, self._background = self._background, None
        background.finish()

    @property
    def oid(self) -> str:
        return self._hash.hexdigest()

    def commit(self, expected: Pointer | None = None) -> Pointer:
        """Verify against `expected` (if given), fsync, and rename into the store."""
        assert self._fd is not None, "writer already closed"
        self._finish_writes()
        oid = self.oid
        if expected is not None and (oid != expected.oid or self.size != expected.size):
            self.abort()
            raise IntegrityError(
                f"object {expected.short_oid} failed verification: expected "
                f"sha256 {expected.oid} ({expected.size} bytes), got {oid} ({self.size} bytes)",
                "the copy on the remote is damaged; from a clone that has the file, run "
                "'git mlx fsck --remote --full --repair'",
            )
        if self._store.has(oid) and self._store.size(oid) == self.size:
            # Already stored (re-adding unchanged content): skip the fsync and the rename.
            self.abort()
            self._committed = True
            return Pointer(oid, self.size)
        if not self.durable:
            pass  # a remote holds it: a power loss costs a re-download, never data
        elif self.size >= FSYNC_EACH:
            os.fsync(self._fd)
        else:
            self._store.mark_unsynced()
        os.close(self._fd)
        self._fd = None
        self._store.adopt(self.tmp_path, oid)
        self._committed = True
        return Pointer(oid, self.size)

    def abort(self) -> None:
        if self._background is not None:
            background, self._background = self._background, None
            try:
                background.finish()
            except OSError:
                pass
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.unlink(self.tmp_path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        # Not `self._fd is not None`: a failed rename in `commit` has already closed it.
        if not self._committed:
            self.abort()


class Store:
    """A directory of objects: `objects/<oid[0:2]>/<oid[2:4]>/<oid>`, plus `tmp/`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.unsynced = False
        self.objects_dir = self.root / "objects"
        self.tmp_dir = self.root / "tmp"
        self._object_tmp: Path | None = None

    def path(self, oid: str) -> Path:
        """Where `oid` lives. Refuses anything but 64 lowercase hex digits (no path tricks)."""
        if not is_valid_oid(oid):
            raise MlxError(f"refusing invalid oid {oid!r}")
        return self.objects_dir / oid[0:2] / oid[2:4] / oid

    def object_tmp_dir(self) -> Path:
        """Where objects are written before their rename: `tmp/`, or `objects/tmp/` when
        `objects/` is on another file system (a symlink the user made), since rename(2)
        cannot cross file systems (EXDEV). Decided once per Store."""
        if self._object_tmp is None:
            self.tmp_dir.mkdir(parents=True, exist_ok=True)
            self.objects_dir.mkdir(parents=True, exist_ok=True)
            same = os.stat(self.tmp_dir).st_dev == os.stat(self.objects_dir).st_dev
            self._object_tmp = self.tmp_dir if same else self.objects_dir / "tmp"
            self._object_tmp.mkdir(exist_ok=True)
        return self._object_tmp

    def mark_unsynced(self) -> None:
        """Remember to sync; at the latest when the process exits."""
        if not self.unsynced:
            self.unsynced = True
            atexit.register(self.sync)

    def sync(self) -> None:
        """Flush small objects written without their own fsync to disk (syncfs(2))."""
        if not self.unsynced:
            return
        self.unsynced = False
        try:
            import ctypes

            fd = os.open(self.objects_dir, os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
        except (OSError, AttributeError):
            pass
        os.sync()

    def has(self, oid: str) -> bool:
        try:
            st = os.stat(self.path(oid))
        except FileNotFoundError:
            return False
        return stat.S_ISREG(st.st_mode)

    def size(self, oid: str) -> int:
        return os.stat(self.path(oid)).st_size

    def open(self, oid: str) -> BinaryIO:
        return open(self.path(oid), "rb")  # noqa: SIM115

    def writer(self, durable: bool = True) -> ObjectWriter:
        """A writer for one new object. `durable=False` for objects a remote also holds
        (downloads): they are not synced to disk (docs/local-store.md, "Durability")."""
        return ObjectWriter(self, durable)

    def adopt(self, tmp_path: Path, oid: str) -> None:
        """Rename an already verified temporary file to its final name.

        Read-only mode, so an accidental write through a copy or a link is refused.
        """
        final = self.path(oid)
        os.chmod(tmp_path, 0o444)
        try:
            try:
                os.replace(tmp_path, final)
            except FileNotFoundError:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_path, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # Only a folder below objects/ symlinked to yet another file system gets here.
            raise MlxError(
                f"cannot store object {oid[:10]}: '{tmp_path.parent}' and '{final.parent}' of the store "
                f"'{self.root}' are on different file systems",
                f"put the whole store on one file system (for instance symlink '{self.root}' itself)",
            ) from None

    def insert_stream(self, stream: BinaryIO, expected: Pointer | None = None) -> Pointer:
        """Copy `stream` into the store in bounded memory; verify against `expected`."""
        with self.writer() as writer:
            while block := stream.read(BLOCK_SIZE):
                writer.write(block)
            return writer.commit(expected)

    def insert_file(self, path: Path) -> Pointer:
        with open(path, "rb") as stream:
            return self.insert_stream(stream)

    def verify(self, oid: str) -> bool:
        """Re-hash an object: True when its bytes still match its name."""
        digest = hashlib.sha256()
        with self.open(oid) as stream:
            while block := stream.read(BLOCK_SIZE):
                digest.update(block)
        return digest.hexdigest() == oid

    def iter_objects(self) -> Iterator[StoredObject]:
        """Every object under a valid name (temporary and stray files are skipped)."""
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
