"""Putting object content into work-tree files, for the filter (over the pointer git has
just written) and for `git mlx checkout`, `pull` and the hooks (over pointer files found
in the work tree).

Owns: finding work-tree files that still hold their pointer text, replacing each with
its verified content atomically (objectfile writes one file, spare swaps it in), and
refreshing git's index so `git status` stays clean.
Must not: fetch (callers fetch first) or print.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.checkout.objectfile import check_inside, fill, sweep_temps, take, take_object, write_object
from gitmlx.checkout.statcache import StatCache
from gitmlx.errors import MlxError
from gitmlx.format.pointer import Pointer
from gitmlx.git import index_file
from gitmlx.git.plumbing import index_location, run_git
from gitmlx.git.scan import TrackedFile
from gitmlx.osutil import digests
from gitmlx.store.objects import BLOCK_SIZE, Store

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from gitmlx.checkout.spare import SpareFile
    from gitmlx.context import RepoContext


@dataclass
class PlaceResult:
    placed: list[TrackedFile] = field(default_factory=list)
    missing: list[TrackedFile] = field(default_factory=list)
    failed: list[tuple[TrackedFile, str]] = field(default_factory=list)
    stats: dict[str, os.stat_result] = field(default_factory=dict)

    def failure_messages(self) -> list[str]:
        """One line for each file that could not be placed."""
        return [f"cannot check out '{tracked.path}': {why}" for tracked, why in self.failed]


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


def place(
    store: Store,
    work_tree: Path,
    tracked: TrackedFile,
    cache: StatCache | None = None,
    verified: bool = False,
    take: bool = False,
) -> os.stat_result:
    """Replace the pointer file with the object's bytes: temp file, verify, rename.

    By reflink where the file system can (no data copied; the clone is then read once to
    verify it), else by copy while hashing. Never by hardlink: a user writing to the work
    tree file would write into the store. `verified` (this process hashed the object
    when it downloaded it, moments ago) skips the hash: the kernel copies, the size is
    checked. With `cache`, the result is recorded so the clean filter can recognise the
    untouched file without re-hashing it. With `take` (mlx.thin) a `verified` loose
    object is moved out of the store instead. Returns the placed file's stat data, for the index.
    """
    target = work_tree / tracked.path
    check_inside(work_tree, os.path.dirname(target), tracked.path)
    mode = 0o755 if tracked.mode == "100755" else 0o644
    st = take_object(store, target, tracked.pointer, mode) if take and verified else None
    if st is None:
        st = write_object(store, target, tracked.pointer, mode, verified, tracked.path)
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
    take: bool = False,
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
    temporary file renamed over it. With `take` (a thin checkout, an object this process
    downloaded), the loose object is moved out of the store instead of copied, where it can.
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
        check_inside(work_tree, folder, path)
        sweep_temps(Path(folder))  # what a killed placement left here
        if checked_dirs is not None:
            checked_dirs.add(folder)
    mode = stat.S_IMODE(st.st_mode)
    if take:
        placed = _take_over_pointer(store, target, pointer, mode, st, spare)
        if placed is not None:
            return placed or None
    fd = spare.open(st.st_dev, mode) if spare is not None else None
    if fd is not None:
        assert spare is not None
        try:
            fill(store, fd, pointer, mode, verified, path)
            try:
                return os.fstat(fd) if spare.swap(target, st) else None
            except OSError:
                spare.disable()  # the file system cannot exchange names: the old way below
        finally:
            os.close(fd)
    return write_object(store, target, pointer, mode, verified, path)


def _take_over_pointer(
    store: Store, target: str, pointer: Pointer, mode: int, pointer_file: os.stat_result, spare: SpareFile | None
) -> os.stat_result | bool | None:
    """`place_over_pointer` by moving the loose object out of the store (`objectfile.take`):
    the placed file's stat data; False when the target was another file by the swap (left
    alone); None when the object cannot be moved (the caller copies it)."""
    fd = None if spare is None else spare.adopt(pointer_file.st_dev, lambda dest: take(store, pointer, dest, mode))
    if spare is None or fd is None:
        return take_object(store, target, pointer, mode)
    try:
        try:
            return os.fstat(fd) if spare.swap(target, pointer_file) else False
        except OSError:
            # The file system cannot exchange names: the object is under the spare's name.
            os.replace(spare.path, target)
            spare.disable()
            return os.fstat(fd)
    finally:
        os.close(fd)


def check_out(ctx: RepoContext, files: Sequence[TrackedFile], verified: Container[str] = ()) -> PlaceResult:
    """Replace pointer files in the work tree with their content, then refresh the index.

    Files an interrupted placement left holding their content under a stale index entry
    are refreshed too, so rerunning the command finishes what was cut short. `verified`:
    objects hashed moments ago (the kernel copies them, their size is checked).
    """
    work_tree = ctx.paths.work_tree
    if work_tree is None:
        raise MlxError("this is a bare repository: there is no work tree to check out into")
    pending = [f for f in files if holds_pointer(work_tree, f)]
    cache = StatCache(ctx.paths.git_dir)
    try:
        pending_paths = {f.path for f in pending}
        stale = stale_in_index(work_tree, [f for f in files if f.path not in pending_paths], cache)
        from gitmlx.checkout.spare import SpareFile

        spare = SpareFile(ctx.paths.git_dir)
        try:
            result = place_all(ctx.store, work_tree, pending, cache, verified, thin=ctx.thin, spare=spare)
        finally:
            spare.remove()
    finally:
        cache.close()
    links = ctx.store.worktree_links if ctx.thin else None
    if links is not None:
        for tracked in result.placed:
            # Before the index refresh: the link changes the file's ctime, which git compares.
            path = tracked.path
            result.stats[path] = links.add(tracked.pointer.oid, str(work_tree / path), result.stats[path])
    placed = {f.path: PlacedStat(f.pointer, result.stats[f.path]) for f in result.placed}
    refresh_index(work_tree, {**{path: PlacedStat(f.pointer, st) for path, (f, st) in stale.items()}, **placed})
    if ctx.thin:
        _thin_done(ctx.store, result, verified)
    return result


def _thin_done(store: Store, result: PlaceResult, verified: Container[str]) -> None:
    """mlx.thin after placing (and linking the placed files as chunk sources): drop the
    store copies of the downloads placed (the remote holds them), sweep stale links."""
    links = store.worktree_links
    try:
        store.discard({f.pointer.oid for f in result.placed if f.pointer.oid in verified})
        if links is not None:
            links.sweep()
    except OSError:
        pass  # a full disk while rewriting a pack: `git mlx prune` drops them later


def place_all(
    store: Store,
    work_tree: Path,
    files: Iterable[TrackedFile],
    cache: StatCache | None = None,
    verified: Container[str] = (),
    thin: bool = False,
    spare: SpareFile | None = None,
) -> PlaceResult:
    """Place each of `files`; with `thin`, the last file needing a verified object takes
    it out of the store (`place`). With `spare`, a file still holding its pointer is
    swapped with the filled spare, as a checkout's placements are (SpareFile: besides
    freeing no inode, a swap spares ext4 the flush it starts when a rename replaces a
    file, `auto_da_alloc`, which made each placed 16 MiB file wait for its writeback)."""
    result = PlaceResult()
    swept: set[Path] = set()
    files = list(files)
    last = {f.pointer.oid: f.path for f in files} if thin else {}
    with cache.batch() if cache is not None else contextlib.nullcontext():
        for tracked in files:
            directory = (work_tree / tracked.path).parent
            if directory not in swept:
                sweep_temps(directory)
                swept.add(directory)
            take = last.get(tracked.pointer.oid) == tracked.path
            _place_one(store, work_tree, tracked, cache, verified, result, take, spare)
    return result


def _place_one(
    store: Store,
    work_tree: Path,
    tracked: TrackedFile,
    cache: StatCache | None,
    verified: Container[str],
    result: PlaceResult,
    take: bool = False,
    spare: SpareFile | None = None,
) -> None:
    if not store.has(tracked.pointer.oid):
        result.missing.append(tracked)
        return
    checked = tracked.pointer.oid in verified
    try:
        text = tracked.pointer.encode()
        st = None
        if spare is not None:
            st = place_over_pointer(
                store, work_tree, tracked.path, tracked.pointer, text, checked, None, spare, take and checked
            )
            if st is not None and cache is not None:
                cache.record(tracked.path, st, text)
        if st is None:  # not exactly the pointer's canonical text (or it changed): as before
            st = place(store, work_tree, tracked, cache, checked, take)
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


class PlacedStat:
    """A placed file's `pointer`, answering its os.stat_result's attributes too."""

    __slots__ = ("pointer", "_st")

    def __init__(self, pointer: Pointer, st: os.stat_result) -> None:
        self.pointer = pointer
        self._st = st

    def __getattr__(self, name: str) -> object:
        return getattr(self._st, name)


class _Wanted(Mapping[str, index_file.Wanted]):
    """What `index_file.record_stat` wants of each placed path, made when asked: made up
    front for a clone of 100,000 files, the blob ids and their sets took ~50 MiB."""

    def __init__(self, placed: Mapping[str, PlacedStat], object_format: str) -> None:
        self._placed = placed
        self._format = object_format

    def __getitem__(self, path: str) -> index_file.Wanted:
        placed = self._placed[path]
        pointer = placed.pointer
        texts = {pointer.encode(), pointer.as_mlx().encode()}
        return index_file.Wanted(frozenset(digests.git_blob_id(t, self._format) for t in texts), placed)

    def __iter__(self) -> Iterator[str]:
        return iter(self._placed)

    def __len__(self) -> int:
        return len(self._placed)


def refresh_index(work_tree: Path, placed: Mapping[str, PlacedStat]) -> None:
    """Record the placed files' stat data in git's index, so `git status` stays clean.

    `placed` maps each path to its pointer and stat data (a `PlacedStat`, or the filter's
    packed `placement.PlacedFile`, which answers the same attributes). The blob stays the
    pointer; only the index's cached stat data is out of date (it is the pointer file's).
    gitmlx writes it directly (git/index_file.py explains why); where it cannot (a split
    index), `git update-index --refresh` runs the files whose stat data changed through the
    clean filter once more (the stat cache answers for the placed ones). Entries that name
    another blob by now are left alone.
    """
    if not placed:
        return
    index_path, object_format = index_location(work_tree)
    wanted = _Wanted(placed, object_format)
    try:
        index_file.record_stat(index_path, wanted, object_format, report=False)
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
