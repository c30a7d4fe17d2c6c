"""Inserting one object into the local store: stream, hash, verify, name.

Owns: `ObjectWriter`, which streams bytes into a temporary file while hashing them, and
on `commit` checks them against the expected pointer and names the file by its oid (or
hands a small object to the store's pack), plus when a new object is fsynced.
Must not: decide where objects live (the store's `path` and `object_tmp_dir` do), talk
to a remote, run git, or print.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

from gitmlx import trace
from gitmlx.errors import IntegrityError, MlxError
from gitmlx.format.pointer import Pointer
from gitmlx.osutil import digests
from gitmlx.store.blockio import BackgroundWriter, BlockFiller

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from hashlib import _Hash

    from gitmlx.store.objects import Store

#: Objects at least this big are fsynced before their rename; smaller ones are synced
#: together by `Store.sync()` at the end of the batch: one fsync per small file would
#: dominate a `git add` of many of them. docs/local-store.md, "Durability".
FSYNC_EACH = 8 * 1024 * 1024
#: Objects smaller than this go into a store pack (one file per batch) instead of a file
#: of their own. docs/local-store.md, "Store packs".
PACK_BELOW = 2 * 1024 * 1024


class ObjectWriter:
    """Streams bytes into a temporary file while hashing; `commit` names it by its oid.

    Use as a context manager: leaving without `commit` (an exception, a kill) removes
    the temporary file, so nothing half-written is ever visible under an oid. Bytes are
    gathered into 1 MiB blocks; past the first block, writes go through a worker thread
    so hashing and writing overlap.
    """

    BLOCK = 1024 * 1024

    def __init__(
        self,
        store: Store,
        durable: bool = True,
        loose: bool = False,
        resume_as: str | None = None,
        fsync: bool = False,
    ) -> None:
        self._store = store
        self.durable = durable
        #: The hash of the bytes so far, made by the first bytes hashed (`_hashed`).
        self._hash: _Hash | None = None
        self.size = 0
        self._committed = False
        #: Bytes of a small object, kept in memory for a store pack until it outgrows
        #: PACK_BELOW (then written to a temporary file like any other). None: loose.
        self._small: bytearray | None = None if loose else bytearray()
        self.tmp_path: Path | None = None
        self._fd: int | None = None
        self._blocks = BlockFiller(self._emit, self.BLOCK)
        self._background: BackgroundWriter | None = None
        self._loose = loose
        #: fsynced before its rename whatever its size (else only from FSYNC_EACH up).
        self._fsync = fsync and durable
        #: Writing `partial-<oid>`, kept when left without commit (see `_open_partial`).
        self._partial = False
        if loose:
            self._open()
        elif resume_as is not None:
            self._small = None
            self._open_partial(resume_as)

    def _open(self) -> None:
        self.tmp_path = self._store.object_tmp_dir() / f"obj-{os.getpid()}-{os.urandom(8).hex()}"
        self._fd = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)

    def _open_partial(self, oid: str) -> None:
        """Write into `partial-<oid>`, which survives a kill or a failure so that the next
        download of the object continues it (`resume_prefix`; docs/local-store.md, "Layout").
        Locked while written: a second process downloading the same object at once writes
        a temporary file of its own instead."""
        path = self._store.object_tmp_dir() / f"partial-{oid}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError:
            self._open()
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            self._open()
            return
        self.tmp_path, self._fd, self._partial = path, fd, True

    def resume_prefix(self, pieces: Iterable[tuple[int, bytes]]) -> tuple[int, int]:
        """Keep the longest prefix of a partial file (`resume_as`) made of `pieces` (length,
        sha256), in order, each of whose bytes hash to its sha256; drop the rest. The kept
        bytes count as written (and hashed) already. Returns (pieces kept, bytes kept).
        Call before any `write`; without a partial file, (0, 0)."""
        if not self._partial or self.size:
            return 0, 0
        fd = self._fd
        assert fd is not None
        import hashlib

        count = kept = 0
        for length, digest in pieces:
            data = os.pread(fd, length, kept)
            if len(data) != length or hashlib.sha256(data).digest() != digest:
                break
            self._hashed(data)
            kept += length
            count += 1
        if os.fstat(fd).st_size != kept:
            # Not when there is nothing to cut (a new file): on ext4 a truncate to size 0
            # makes the close write the whole object back in the closing thread (its
            # "auto_da_alloc" for files replaced by truncation), seen in `perf`.
            os.ftruncate(fd, kept)
        os.lseek(fd, kept, os.SEEK_SET)
        self.size = kept
        return count, kept

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        if self._small is not None:
            if len(self._small) + len(view) < PACK_BELOW:
                self._small += view
                self.size += len(view)
                return
            small, self._small = self._small, None
            self._open()
            self.size -= len(small)
            self.write(small)
        assert self._fd is not None, "writer already closed"
        self.size += len(view)
        if len(view) >= self.BLOCK // 2 and isinstance(view.obj, bytes):
            # Large and immutable (a read's own buffer): hashed and queued as it is, after
            # the partial block gathered before it (a copy of less than a block). Without
            # that, one short write (the end of a ranged read) sent every later write of
            # the object through the filler: a copy of nearly every byte.
            if self._blocks.fill:
                self._emit(bytes(self._blocks.take_tail()))
            self._emit(view)
            return
        self._blocks.write(view)

    def _hashed(self, data: bytes | bytearray | memoryview, whole: bool = False) -> None:
        """Add `data` to the hash. `whole`: it is the object's only bytes, which a small
        object may hash without loading OpenSSL (`digests`); a stream uses hashlib."""
        if self._hash is not None:
            self._hash.update(data)
        elif whole:
            self._hash = digests.new("sha256", data)
        else:
            import hashlib  # not at module level: the filter's start waits for OpenSSL's load

            self._hash = hashlib.sha256(data)

    def _emit(self, block: bytes | bytearray | memoryview) -> None:
        self._hashed(block)
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
            self._hashed(tail, whole=True)  # nothing went to the worker: these are all the bytes
            while tail:
                tail = tail[os.write(self._fd, tail) :]  # type: ignore[arg-type]
            return
        if tail:
            self._emit(bytes(tail))  # a copy: only whole blocks go back to the filler
        background, self._background = self._background, None
        background.finish()

    @property
    def oid(self) -> str:
        if self._small is not None:
            return digests.new("sha256", self._small).hexdigest()
        if self._hash is None:
            self._hashed(b"", whole=True)
        return self._hash.hexdigest()  # type: ignore[union-attr]

    def commit(self, expected: Pointer | None = None) -> Pointer:
        """Verify against `expected` (if given), fsync, and rename into the store.

        A small object goes into the store's pack instead (`Store.add_packed`)."""
        if self._small is not None:
            oid = self.oid
            self._check(expected, oid)
            if not (self._store.has(oid) and self._store.size(oid) == self.size):
                self._store.add_packed(oid, self._small, self.durable)
                if trace.ON:
                    trace.log("store", "object %s (%d bytes): added to the store's pack", oid, self.size)
            elif trace.ON:
                trace.log("store", "object %s (%d bytes): already stored", oid, self.size)
            self._small = None
            self._committed = True
            return Pointer(oid, self.size)
        assert self._fd is not None, "writer already closed"
        self._finish_writes()
        oid = self.oid
        self._check(expected, oid)
        if self._loose:
            present = os.path.isfile(self._store.path(oid))  # a packed copy does not count
        else:
            present = self._store.has(oid) and self._store.size(oid) == self.size
        if present:
            # Already stored (re-adding unchanged content): skip the fsync and the rename.
            if trace.ON:
                trace.log("store", "object %s (%d bytes): already stored", oid, self.size)
            self.abort()
            self._committed = True
            return Pointer(oid, self.size)
        if not self.durable:
            pass  # a remote holds it: a power loss costs a re-download, never data
        elif self.size >= FSYNC_EACH or self._fsync:
            os.fsync(self._fd)
        else:
            self._store.mark_unsynced()
        os.close(self._fd)
        self._fd = None
        _rename_into_store(self.tmp_path, self._store.path(oid), self._store.root)  # type: ignore[arg-type]
        if trace.ON:
            trace.log("store", "object %s (%d bytes): stored as a loose file", oid, self.size)
        self._committed = True
        return Pointer(oid, self.size)

    def _check(self, expected: Pointer | None, oid: str) -> None:
        if expected is not None and (oid != expected.oid or self.size != expected.size):
            self.abort()
            raise failed_verification(expected, oid, self.size)

    def abort(self, keep_partial: bool = False) -> None:
        """Drop what was written; a partial file (`resume_as`) stays when `keep_partial`,
        with what was still buffered written out."""
        if keep_partial and self._partial and self._fd is not None:
            try:
                self._finish_writes()
            except OSError:
                pass  # a full disk, say: the next run keeps what verifies
        if self._background is not None:
            background, self._background = self._background, None
            try:
                background.finish()
            except OSError:
                pass
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self.tmp_path is not None and not (keep_partial and self._partial):
            try:
                os.unlink(self.tmp_path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        # Not `self._fd is not None`: a failed rename in `commit` has already closed it.
        if not self._committed:
            # A partial download is kept for the next one (it is verified before reuse), unless
            # the disk filled up: then its space is worth more than what it saves.
            self.abort(keep_partial=not _out_of_space(error))


def failed_verification(expected: Pointer, oid: str, size: int) -> IntegrityError:
    """The error for downloaded bytes that are not the object `expected` names."""
    return IntegrityError(
        f"object {expected.short_oid} failed verification: expected "
        f"sha256 {expected.oid} ({expected.size} bytes), got {oid} ({size} bytes)",
        "the copy on the remote is damaged; from a clone that has the file, run "
        "'git mlx fsck --remote --full --repair'",
    )


def _out_of_space(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from, is a full disk or quota."""
    seen = 0
    while error is not None and seen < 16:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__
        seen += 1
    return False


def _rename_into_store(tmp_path: Path, final: Path, store_root: Path) -> None:
    """Rename an already verified temporary file to its final name.

    Read-only mode, so an accidental write through a copy or a link is refused.
    """
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
            f"cannot store object {final.name[:10]}: '{tmp_path.parent}' and '{final.parent}' of the store "
            f"'{store_root}' are on different file systems",
            f"put the whole store on one file system (for instance symlink '{store_root}' itself)",
        ) from None
