"""Putting object content into the work tree outside a filter (`git mlx checkout`).

Owns: finding work-tree files that still hold their pointer text, replacing each with
its verified content atomically, and refreshing git's index so `git status` stays clean.
Must not: fetch (callers fetch first) or print.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import os
import re
import secrets
import stat
import time
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.checkout.statcache import StatCache
from gitmlx.errors import IntegrityError, MlxError
from gitmlx.format.pointer import Pointer
from gitmlx.git import index_file
from gitmlx.git.plumbing import index_location, run_git
from gitmlx.git.scan import TrackedFile
from gitmlx.osutil import fastcopy, oscalls
from gitmlx.store.objects import BLOCK_SIZE, Store


@dataclass
class PlaceResult:
    placed: list[TrackedFile] = field(default_factory=list)
    missing: list[TrackedFile] = field(default_factory=list)
    failed: list[tuple[TrackedFile, str]] = field(default_factory=list)
    stats: dict[str, os.stat_result] = field(default_factory=dict)


def holds_pointer(work_tree: Path, tracked: TrackedFile) -> bool:
    """True when the work-tree file is exactly its pointer text (content not placed)."""
    path = work_tree / tracked.path
    try:
        if path.is_symlink() or path.stat().st_size >= 1024:
            return False
        data = path.read_bytes()
    except OSError:
        return False
    return data == tracked.pointer.encode() or data == tracked.pointer.as_mlx().encode()


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()


_temp_numbers = itertools.count()


def _create_temp(target: str | Path, mode: int) -> tuple[str, int]:
    """A new file `.<name>.mlx-<pid>-<8 hex>` beside the target (same file system, so the
    rename is atomic) and its descriptor, open for writing. The hex counts up within a
    process; a name a dead process with the same pid left gets random hex instead."""
    folder, base = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    tmp = os.path.join(folder, f".{base}.mlx-{os.getpid()}-{next(_temp_numbers) & 0xFFFFFFFF:08x}")
    try:
        return tmp, os.open(tmp, flags, mode)
    except FileExistsError:
        tmp = os.path.join(folder, f".{base}.mlx-{os.getpid()}-{secrets.token_hex(4)}")
        return tmp, os.open(tmp, flags, mode)


def _check_inside(work_tree: Path, folder: str, name: str) -> None:
    """Refuse a folder that resolves (through symbolic links) outside the work tree."""
    root = os.path.realpath(work_tree)
    if os.path.commonpath([root, os.path.realpath(folder)]) != root:
        raise MlxError(f"'{name}' is outside the work tree")


def process_alive(pid: int) -> bool:
    """Whether `pid` runs. A zombie does not: a SIGKILLed hook whose parent died too can
    stay one for long where nobody reaps orphans (some containers' init), and its temp
    files and claims must not wait for that."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no procfs: trust kill(2)
    return state not in (b"Z", b"X")


#: `.<name>.mlx-<pid>-<8 hex>`: a placement's temporary file (`.<name>.mlx-<12 hex>` before).
_TEMP_NAME = re.compile(r"\..+\.mlx-(?:(\d+)-[0-9a-f]{8}|[0-9a-f]{12})")


def sweep_temps(directory: Path) -> None:
    """Remove the temp files interrupted placements left in `directory`.

    Only those whose writer is gone: a live gitmlx process placing a file keeps its own
    (its pid is in the name; names without one are from older versions).
    """
    try:
        names = [n for n in os.listdir(directory) if ".mlx-" in n]
    except OSError:
        return
    for name in names:
        match = _TEMP_NAME.fullmatch(name)
        if match is None or (match.group(1) and process_alive(int(match.group(1)))):
            continue
        try:
            os.unlink(directory / name)
        except OSError:
            pass


def place(
    store: Store, work_tree: Path, tracked: TrackedFile, cache: StatCache | None = None, verified: bool = False
) -> os.stat_result:
    """Replace the pointer file with the object's bytes: temp file, verify, rename.

    By reflink where the file system can (no data copied; the clone is then read once to
    verify it), else by copy while hashing. Never by hardlink: a user writing to the work
    tree file would write into the store. `verified` (this process hashed the object
    when it downloaded it, moments ago) skips the hash: the kernel copies, the size is
    checked. With `cache`, the result is recorded so the clean filter can recognise the
    untouched file without re-hashing it. Returns the placed file's stat data, for the index.
    """
    target = work_tree / tracked.path
    _check_inside(work_tree, os.path.dirname(target), tracked.path)
    mode = 0o755 if tracked.mode == "100755" else 0o644
    st = _write_object(store, target, tracked.pointer, mode, verified, tracked.path)
    if cache is not None:
        cache.record(tracked.path, st, tracked.pointer.encode())
    return st


def place_over_pointer(
    store: Store,
    work_tree: Path,
    path: str,
    pointer: Pointer,
    text: bytes,
    verified: bool = False,
    checked_dirs: set[str] | None = None,
    spare: SpareFile | None = None,
) -> os.stat_result | None:
    """Put the object's bytes where git has just written its pointer `text` (a checkout
    whose files the filter places itself); None, touching nothing, when the file no
    longer holds exactly `text`.

    A file holding exactly the pointer text is, whatever git's index says, clean or
    modified the same way before and after: the content is what smudging that text
    gives. The file keeps the permission bits git gave it. Runs once per file of a
    checkout, so it works on descriptors and strings, not file objects and Paths;
    `checked_dirs` remembers the folders already found inside the work tree (and swept of
    the temporary files of killed placements). With `spare`, the object is written into
    the spare file and swapped with the pointer file (see SpareFile), else into a new
    temporary file renamed over it.
    """
    target = os.path.join(work_tree, path)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symbolic link now: not what git wrote
            return None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != len(text) or os.read(fd, len(text) + 1) != text:
            return None
    finally:
        os.close(fd)
    folder = os.path.dirname(target)
    if checked_dirs is None or folder not in checked_dirs:
        _check_inside(work_tree, folder, path)
        sweep_temps(Path(folder))  # what a killed placement left here
        if checked_dirs is not None:
            checked_dirs.add(folder)
    mode = stat.S_IMODE(st.st_mode)
    fd = spare.open(st.st_dev, mode) if spare is not None else None
    if fd is not None:
        assert spare is not None
        try:
            _fill(store, fd, pointer, mode, verified, path)
            try:
                return os.fstat(fd) if spare.swap(target, st) else None
            except OSError:
                spare.disable()  # the file system cannot exchange names: the old way below
        finally:
            os.close(fd)
    return _write_object(store, target, pointer, mode, verified, path)


#: `<git-dir>/mlx-spare.<pid>`: the spare file of a checkout's placements (SpareFile).
SPARE_PREFIX = "mlx-spare."


class SpareFile:
    """The file that every placement of a checkout writes an object into and then swaps
    with the pointer file git wrote: `<git-dir>/mlx-spare.<pid>`.

    Why not a new temporary file renamed over the pointer: the rename frees the pointer
    file's inode, and an ext4 file system without a journal, when it allocates an inode,
    skips every one freed in the last half minute or so, reading each one's inode-table block to
    find out (the kernel's `recently_deleted`). In a clone of 2,000 files, git's creates and ours
    scanned ever longer runs of freed inodes: a third of the clone's busy time (`perf`),
    and the next 30 seconds of anybody's creates in those block groups. A swap
    (renameat2 RENAME_EXCHANGE) is as atomic as the rename (the work-tree file holds its
    pointer or the whole object, never anything else) and frees nothing: the pointer's
    inode, now under the spare's name, is overwritten with the next file. A
    checkout creates one inode and frees one, whatever its number of files.

    The swap also tells whether git's pointer file was still there: when the name held
    another file by then (replaced between the check and the swap: another inode, or
    the same number with another modification time or size), it is swapped back.
    A killed process leaves the spare behind; the next checkout's first placement deletes
    the spares of processes that are gone.
    """

    def __init__(self, git_dir: Path) -> None:
        self.path = os.path.join(git_dir, f"{SPARE_PREFIX}{os.getpid()}")
        self._git_dir = git_dir
        #: The device of the git dir; None until first used, -1 where swaps do not work.
        self._device: int | None = None
        self._exists = False

    def open(self, device: int, mode: int) -> int | None:
        """The spare, with permission bits `mode`, open for writing at offset 0 (holding a
        pointer's text, or nothing); None when it cannot serve a file on `device`
        (another file system, or no swaps here)."""
        if self._device is None:
            self._device = self._start()
        if self._device != device:
            return None
        try:
            return self._open(mode)
        except OSError:
            self.disable()  # cannot write in the git dir: temporary files beside the targets
            return None

    def _open(self, mode: int) -> int:
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        if self._exists:
            fd = os.open(self.path, flags)
            st = os.fstat(fd)
            if st.st_nlink == 1 and stat.S_ISREG(st.st_mode):
                # Not emptied: the object is written over the old pointer text from offset
                # 0 and the file cut to its size after (`_fill`). ext4 takes a file
                # truncated to 0 for a file being replaced and flushes it when closed
                # (auto_da_alloc): 0.45 ms per file here, ten times the copy.
                if stat.S_IMODE(st.st_mode) != mode:
                    os.fchmod(fd, mode)
                return fd
            # The pointer file had another name too (a hard link made after git wrote
            # it): never write into a file that is somewhere else as well.
            os.close(fd)
            self.remove()
        fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, mode)
        self._exists = True
        return fd

    def swap(self, target: str, pointer_file: os.stat_result) -> bool:
        """Exchange the filled spare with `target`, which held the pointer file
        `pointer_file`; False, `target` back as it was, when it was another file by then.
        OSError when the file system cannot swap."""
        oscalls.exchange(self.path, target)
        now = os.lstat(self.path)
        # The inode number alone could be a new file's (a freed number is reused at once);
        # the exchange changed the ctime but not the modification time or size.
        if _identity(now) == _identity(pointer_file):
            return True
        try:
            oscalls.exchange(self.path, target)
        except OSError as exc:
            # The spare's name holds the other file now: never delete it (nor reuse it).
            self._exists, self._device = False, -1
            raise MlxError(
                f"'{target}' changed during the checkout and could not be put back "
                f"({exc.strerror or exc}): its bytes are in '{self.path}'",
                f"move '{self.path}' back to '{target}'",
            ) from exc
        return False

    def disable(self) -> None:
        """Swaps failed here: delete the spare; placements create temporary files."""
        self._device = -1
        self.remove()

    def remove(self) -> None:
        """Delete the spare (the end of a checkout)."""
        if self._exists:
            self._exists = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _start(self) -> int:
        if not oscalls.can_exchange():
            return -1
        try:
            names = [n for n in os.listdir(self._git_dir) if n.startswith(SPARE_PREFIX)]
            for name in names:
                pid = name[len(SPARE_PREFIX) :]
                # Ours by name is a dead process's whose pid was reused.
                if pid.isdigit() and (int(pid) == os.getpid() or not process_alive(int(pid))):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self._git_dir, name))
            return os.stat(self._git_dir).st_dev
        except OSError:
            return -1


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


def _fill(store: Store, fd: int, pointer: Pointer, mode: int, verified: bool, name: str) -> None:
    """The object into the file `fd` (empty, or holding a pointer's text, which is
    overwritten and cut off), checked against its oid (or, when `verified`, its size),
    with permission bits `mode` and a modification time one second back."""
    _copy_object(store, pointer, fd, verified, name)
    st = os.fstat(fd)
    if st.st_size > pointer.size:  # what is left of the spare's earlier text
        os.ftruncate(fd, pointer.size)
        st = os.fstat(fd)
    if st.st_size != pointer.size:
        raise _corrupt(pointer, name)
    if stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)  # the umask took bits away
    _backdate(fd)


def _write_object(
    store: Store, target: str | Path, pointer: Pointer, mode: int, verified: bool, name: str
) -> os.stat_result:
    """`target` atomically made to hold the object (`_fill`); its stat data."""
    tmp, fd = _create_temp(target, mode)
    renamed = False
    try:
        _fill(store, fd, pointer, mode, verified, name)
        os.replace(tmp, target)
        renamed = True
        return os.fstat(fd)  # after the rename: it changes the ctime
    finally:
        os.close(fd)
        if not renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _backdate(fd: int) -> None:
    """Give the new file a modification time one second in the past.

    git takes an index entry whose file is not older than the index itself for "racily
    clean" and re-reads the file through the clean filter at the next `git status`; a
    git built without USE_NSEC (Debian's and Ubuntu's) compares whole seconds, so every
    file placed in the second git then writes its index in was re-read once: a 1 GiB
    checkpoint piped through the filter again (0.5 s), in 3 of 5 clones of the bench.
    One second back makes the entry older than any index written after it. It keeps
    racy-git detection whole: an edit after the placement sets a newer time than the one
    recorded, which git sees as a change.
    """
    mtime = time.time_ns() - 1_000_000_000
    os.utime(fd, ns=(mtime, mtime))


def _corrupt(pointer: Pointer, name: str) -> IntegrityError:
    return IntegrityError(
        f"'{name}': local object {pointer.short_oid} is corrupt",
        "run 'git mlx fsck' and then 'git mlx pull'",
    )


def _copy_object(store: Store, pointer: Pointer, dst: int, verified: bool, name: str) -> None:
    """The object's bytes into the file `dst` from offset 0 (bytes it held beyond the
    object's size stay, for the caller to cut off): a loose object by reflink where the
    file system can (then hashed in the store, whose extents the copy shares, unless
    `verified`), else by kernel copy when `verified`, else read, hashed and written.
    IntegrityError when the bytes do not hash to the oid."""
    where = store.locate(pointer.oid)
    if isinstance(where, str):
        src_fd = os.open(where, os.O_RDONLY | os.O_CLOEXEC)
        offset, size = 0, os.fstat(src_fd).st_size
    else:
        src_fd, offset, size = where
    try:
        if size != pointer.size:
            raise _corrupt(pointer, name)
        if isinstance(where, str) and os.fstat(dst).st_size:
            os.ftruncate(dst, 0)  # a reflink's target must be empty (one large file: no cost)
        if isinstance(where, str) and fastcopy.reflink_fd(src_fd, dst):
            if not verified and _hash_range(src_fd, offset, size) != pointer.oid:
                raise _corrupt(pointer, name)
            return
        if not (verified and fastcopy.copy_span(src_fd, offset, dst, size)):
            os.lseek(dst, 0, os.SEEK_SET)  # over whatever a failed copy_span wrote
            if _hash_range(src_fd, offset, size, dst) != pointer.oid:
                raise _corrupt(pointer, name)
        store.copied_out(where)
    finally:
        if isinstance(where, str):
            os.close(src_fd)


def _hash_range(src: int, offset: int, size: int, dst: int | None = None) -> str:
    """SHA-256 of `size` bytes of `src` from `offset`, written on to `dst` if given."""
    digest = hashlib.sha256()
    done = 0
    while done < size:
        block = os.pread(src, min(BLOCK_SIZE, size - done), offset + done)
        if not block:
            break
        digest.update(block)
        if dst is not None:
            view = memoryview(block)
            while view:
                view = view[os.write(dst, view) :]
        done += len(block)
    return digest.hexdigest()


def replace_with(target: Path, data: bytes) -> None:
    """Atomically make `target` hold `data` (a pointer), keeping its permission bits."""
    mode = stat.S_IMODE(os.lstat(target).st_mode)
    tmp, fd = _create_temp(target, mode)
    renamed = False
    try:
        with open(fd, "wb", closefd=False) as dst:
            dst.write(data)
        os.fchmod(fd, mode)
        os.replace(tmp, target)
        renamed = True
    finally:
        os.close(fd)
        if not renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def place_all(
    store: Store,
    work_tree: Path,
    files: Iterable[TrackedFile],
    cache: StatCache | None = None,
    verified: Container[str] = (),
) -> PlaceResult:
    result = PlaceResult()
    swept: set[Path] = set()
    with cache.batch() if cache is not None else contextlib.nullcontext():
        for tracked in files:
            directory = (work_tree / tracked.path).parent
            if directory not in swept:
                sweep_temps(directory)
                swept.add(directory)
            _place_one(store, work_tree, tracked, cache, verified, result)
    return result


def _place_one(
    store: Store,
    work_tree: Path,
    tracked: TrackedFile,
    cache: StatCache | None,
    verified: Container[str],
    result: PlaceResult,
) -> None:
    if not store.has(tracked.pointer.oid):
        result.missing.append(tracked)
        return
    try:
        st = place(store, work_tree, tracked, cache, tracked.pointer.oid in verified)
        result.placed.append(tracked)
        result.stats[tracked.path] = st
    except (MlxError, OSError) as exc:
        result.failed.append((tracked, getattr(exc, "message", None) or str(exc)))


def stale_in_index(
    work_tree: Path, files: Iterable[TrackedFile], cache: StatCache | None = None
) -> dict[str, tuple[TrackedFile, os.stat_result]]:
    """Files that hold exactly their content while git's index still has the pointer's size.

    What a placement interrupted before its index refresh leaves: git reports such a file
    modified without reading it, and it no longer holds a pointer, so nothing would
    place it again. Only files of the object's size whose index entry records another
    size are looked at; each is trusted on an exact stat-cache match, else hashed.
    """
    candidates = []
    for tracked in files:
        try:
            st = os.lstat(work_tree / tracked.path)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size == tracked.pointer.size:
            candidates.append((tracked, st))
    if not candidates:
        return {}
    index_path, object_format = index_location(work_tree)
    try:
        recorded = index_file.recorded_sizes(index_path, object_format)
    except (ValueError, OSError):
        return {}
    found = {}
    for tracked, st in candidates:
        if recorded.get(tracked.path, st.st_size & 0xFFFFFFFF) == st.st_size & 0xFFFFFFFF:
            continue
        known = cache.lookup(tracked.path, st) if cache is not None else None
        if known is None and _hash_file(work_tree / tracked.path) != tracked.pointer.oid:
            continue  # the user's own change: theirs to stage
        found[tracked.path] = (tracked, st)
    return found


def refresh_index(work_tree: Path, placed: Mapping[str, tuple[TrackedFile, os.stat_result]]) -> None:
    """Record the placed files' stat data in git's index, so `git status` stays clean.

    The blob stays the pointer; only the index's cached stat data is out of date (it is
    the pointer file's). gitmlx writes it directly (git/index_file.py explains why);
    where it cannot (a split index), `git update-index --refresh` runs the files whose
    stat data changed through the clean filter once more (the stat cache answers for the
    placed ones). Entries that name another blob by now are left alone.
    """
    if not placed:
        return
    index_path, object_format = index_location(work_tree)
    wanted = {
        path: index_file.Wanted(
            frozenset(
                index_file.blob_id(text, object_format)
                for text in {tracked.pointer.encode(), tracked.pointer.as_mlx().encode()}
            ),
            st,
        )
        for path, (tracked, st) in placed.items()
    }
    try:
        index_file.record_stat(index_path, wanted, object_format)
    except index_file.IndexLocked as exc:
        raise MlxError(
            f"git's index is locked ('{exc}'): another git command is running",
            "when it has finished, run 'git mlx checkout' to finish",
        ) from None
    except ValueError:
        # Only a stat refresh: `git update-index <path>` would stage whatever the file
        # holds, and an entry that no longer names the pointer (git changed it since,
        # as `git stash pop` does after its checkout) is not ours to touch.
        run_git(["update-index", "-q", "--refresh"], cwd=work_tree, check=False)
