"""Moving objects between the local store and a remote, in parallel.

Owns: deciding what to move (what the other side lacks), moving it concurrently, and
verifying every download before it gets a name in the store. Returns a TransferResult
listing what moved and what failed instead of stopping at the first failure.
Must not: print (progress goes through a callback the CLI supplies) or know a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gitmlx import layout
from gitmlx.errors import MlxError, ObjectNotFound
from gitmlx.pointer import Pointer
from gitmlx.remotes.base import ProgressCallback, Remote
from gitmlx.store import Store

#: Called once per object finished (moved, skipped or failed).
FileDone = Callable[[Pointer], None]


@dataclass
class TransferResult:
    moved: list[Pointer] = field(default_factory=list)
    skipped: list[Pointer] = field(default_factory=list)
    failed: dict[str, tuple[Pointer, str]] = field(default_factory=dict)

    @property
    def bytes_moved(self) -> int:
        return sum(p.size for p in self.moved)

    @property
    def ok(self) -> bool:
        return not self.failed


def _unique(pointers: Iterable[Pointer]) -> list[Pointer]:
    seen: dict[str, Pointer] = {}
    for p in pointers:
        seen.setdefault(p.oid, p.as_mlx())
    return list(seen.values())


def _run(
    work: Callable[[Pointer], bool],
    pointers: Iterable[Pointer],
    concurrency: int,
    file_done: FileDone | None,
) -> TransferResult:
    result = TransferResult()

    def one(p: Pointer) -> None:
        try:
            (result.moved if work(p) else result.skipped).append(p)
        except MlxError as exc:
            result.failed[p.oid] = (p, exc.message)
        except OSError as exc:
            result.failed[p.oid] = (p, f"{exc.strerror or exc}")
        finally:
            if file_done:
                file_done(p)

    todo = _unique(pointers)
    if concurrency <= 1 or len(todo) <= 1:
        for p in todo:
            one(p)
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(one, todo))
    return result


def upload(
    store: Store,
    remote: Remote,
    pointers: Iterable[Pointer],
    concurrency: int = 8,
    progress: ProgressCallback | None = None,
    file_done: FileDone | None = None,
) -> TransferResult:
    """Put every object the remote lacks; objects missing locally are failures."""

    def work(p: Pointer) -> bool:
        key = layout.object_key(p.oid)
        if remote.exists(key):
            return False
        if not store.has(p.oid):
            raise MlxError("not in the local store")
        remote.put_file(key, store.path(p.oid), progress)
        return True

    return _run(work, pointers, concurrency, file_done)


def download(
    store: Store,
    remote: Remote,
    pointers: Iterable[Pointer],
    concurrency: int = 8,
    progress: ProgressCallback | None = None,
    file_done: FileDone | None = None,
) -> TransferResult:
    """Fetch every object the store lacks, verifying each before it is named."""

    def work(p: Pointer) -> bool:
        if store.has(p.oid):
            return False
        fetch_one(store, remote, p, progress)
        return True

    return _run(work, pointers, concurrency, file_done)


def fetch_one(store: Store, remote: Remote, pointer: Pointer, progress: ProgressCallback | None = None) -> None:
    """Download one object into the store; IntegrityError if its bytes are wrong."""
    with store.writer() as writer:
        try:
            remote.get(layout.object_key(pointer.oid), writer, 0, progress)
        except ObjectNotFound:
            raise ObjectNotFound(
                f"not on remote '{remote.display_url}'",
                "push it from a clone that has the file, then run 'git mlx pull'",
            ) from None
        writer.commit(pointer)


def missing_on_remote(remote: Remote, pointers: Iterable[Pointer], concurrency: int = 8) -> list[Pointer]:
    """The pointers whose objects the remote does not hold."""
    todo = _unique(pointers)
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        present = list(pool.map(lambda p: remote.exists(layout.object_key(p.oid)), todo))
    return [p for p, ok in zip(todo, present, strict=False) if not ok]
