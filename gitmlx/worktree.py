"""Putting object content into the work tree outside a filter (`git mlx checkout`).

Owns: finding work-tree files that still hold their pointer text, replacing each with
its verified content atomically, and refreshing git's index so `git status` stays clean.
Must not: fetch (callers fetch first) or print.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from gitmlx import fastcopy
from gitmlx.errors import IntegrityError, MlxError
from gitmlx.git import index_file
from gitmlx.git.plumbing import index_location, run_git
from gitmlx.git.scan import TrackedFile
from gitmlx.statcache import StatCache
from gitmlx.store import BLOCK_SIZE, Store


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


def _copy_hashing(src: BinaryIO, dst: BinaryIO) -> str:
    digest = hashlib.sha256()
    while block := src.read(BLOCK_SIZE):
        digest.update(block)
        dst.write(block)
    return digest.hexdigest()


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK_SIZE):
            digest.update(block)
    return digest.hexdigest()


def _temp_for(target: Path) -> Path:
    """`.<name>.mlx-<pid>-<hex>` beside the target: same file system, so the rename is atomic."""
    return target.with_name(f".{target.name}.mlx-{os.getpid()}-{secrets.token_hex(4)}")


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
    if not target.resolve().is_relative_to(work_tree.resolve()):
        raise MlxError(f"'{tracked.path}' is outside the work tree")
    tmp = _temp_for(target)
    try:
        with store.open(tracked.pointer.oid) as src, open(tmp, "xb") as dst:
            if verified:
                oid = tracked.pointer.oid
                fastcopy.copy_file(src, dst, tracked.pointer.size)
            else:
                oid = None if fastcopy.reflink(src, dst) else _copy_hashing(src, dst)
        if oid is None:
            oid = _hash_file(tmp)
        if oid != tracked.pointer.oid or os.stat(tmp).st_size != tracked.pointer.size:
            raise IntegrityError(
                f"'{tracked.path}': local object {tracked.pointer.short_oid} is corrupt",
                "run 'git mlx fsck' and then 'git mlx pull'",
            )
        os.chmod(tmp, 0o755 if tracked.mode == "100755" else 0o644)
        os.replace(tmp, target)
        st = os.lstat(target)
        if cache is not None:
            cache.record(tracked.path, st, tracked.pointer.encode())
        return st
    finally:
        if tmp.exists():
            tmp.unlink()


def replace_with(target: Path, data: bytes) -> None:
    """Atomically make `target` hold `data` (a pointer), keeping its permission bits."""
    tmp = _temp_for(target)
    try:
        with open(tmp, "xb") as dst:
            dst.write(data)
            os.fchmod(dst.fileno(), stat.S_IMODE(os.lstat(target).st_mode))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


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
    where it cannot (a split index), `git update-index` re-indexes the paths, which runs
    each file through the clean filter once more, as Git LFS does after `git lfs pull`.
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
        done = index_file.record_stat(index_path, wanted, object_format)
    except index_file.IndexLocked as exc:
        raise MlxError(
            f"git's index is locked ('{exc}'): another git command is running",
            "when it has finished, run 'git mlx checkout' to finish",
        ) from None
    except ValueError:
        done = set()
    rest = [p for p in placed if p not in done]
    data = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in rest)
    if data:
        run_git(["update-index", "-q", "-z", "--stdin"], cwd=work_tree, input=data, check=False)
