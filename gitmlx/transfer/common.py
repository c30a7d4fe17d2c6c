"""Shared pieces of upload and download: results, the format marker, the chunk index."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from gitmlx.errors import MlxError, ObjectNotFound
from gitmlx.format import layout
from gitmlx.format.pointer import Pointer
from gitmlx.osutil import stop
from gitmlx.remotes.base import Remote
from gitmlx.store.chunk_index import ChunkIndex
from gitmlx.store.objects import Store

T = TypeVar("T")

#: Called once per object finished (moved, skipped or failed).
FileDone = Callable[[Pointer], None]


@dataclass
class TransferResult:
    moved: list[Pointer] = field(default_factory=list)
    skipped: list[Pointer] = field(default_factory=list)
    failed: dict[str, tuple[Pointer, str]] = field(default_factory=dict)
    #: Bytes that actually crossed the wire (packs, ranges, manifests), after dedup.
    wire_bytes: int = 0
    #: Objects asked about on the remote (an upload's existence checks; the rest of
    #: `skipped` the remote record vouched for).
    checked: int = 0

    @property
    def bytes_moved(self) -> int:
        """Logical bytes of the objects moved."""
        return sum(p.size for p in self.moved)

    @property
    def ok(self) -> bool:
        return not self.failed

    def fail(self, pointer: Pointer, exc: BaseException) -> None:
        message = exc.message if isinstance(exc, MlxError) else (getattr(exc, "strerror", None) or str(exc))
        self.failed[pointer.oid] = (pointer, message)


def unique(pointers: Iterable[Pointer]) -> list[Pointer]:
    """One of each (oid, size): a pointer lying about an object's size stays separate,
    so it fails on its own instead of standing in for the real one."""
    seen: dict[tuple[str, int], Pointer] = {}
    for p in pointers:
        seen.setdefault((p.oid, p.size), p.as_mlx())
    return list(seen.values())


def index_for(store: Store, warn: Callable[[str], None] | None = None) -> ChunkIndex:
    """The store's chunk index; `warn` hears if it was damaged and started over."""
    return ChunkIndex(store.root / "index.sqlite", warn)


#: `runs` hands objects to workers in runs of at most this many bytes or RUN_OBJECTS objects.
RUN_BYTES = 4 * 1024 * 1024
RUN_OBJECTS = 256


def runs(pointers: Iterable[Pointer]) -> Iterator[list[Pointer]]:
    """`pointers` in order, in runs for one worker task each: a push of 20,000 small files
    is then ~100 tasks, not 20,000 (each a Future with its lock, and a hand-off between
    threads that costs more than packing a 16 KiB file). An object of RUN_BYTES or more
    is a run of its own."""
    run: list[Pointer] = []
    size = 0
    for p in pointers:
        run.append(p)
        size += p.size
        if size >= RUN_BYTES or len(run) >= RUN_OBJECTS:
            yield run
            run, size = [], 0
    if run:
        yield run


def parallel(work: Callable[[T], None], items: Iterable[T], concurrency: int) -> None:
    """Run `work` on each item on `concurrency` threads; the first exception is raised
    once every item has run (each item runs, as with `pool.map`).

    At most a few items per thread are handed to the pool at a time: `pool.map` makes a
    Future (~1.6 KiB with its lock and condition) for every item up front, 160 MiB for a
    push of 100,000 objects."""
    if concurrency <= 1 or (isinstance(items, list) and len(items) <= 1):
        for item in items:
            work(item)
        return
    slots = threading.BoundedSemaphore(concurrency * 4)
    failures: list[BaseException] = []
    abandoned = threading.Event()  # set when the caller gives up: items not started are skipped
    settled = threading.Condition()
    unsettled = 0  # items handed to the pool that have not finished or been skipped

    def run(item: T) -> None:
        nonlocal unsettled
        try:
            if not abandoned.is_set():
                work(item)
        except BaseException as exc:  # noqa: BLE001 - raised on the calling thread below
            failures.append(exc)
        finally:
            slots.release()
            with settled:
                unsettled -= 1
                settled.notify_all()

    pool = ThreadPoolExecutor(max_workers=concurrency)
    try:
        for item in items:
            slots.acquire()
            with settled:
                unsettled += 1
            pool.submit(run, item)
        pool.shutdown(wait=True)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            stop.request()  # the workers stop at their next block instead of finishing
        abandoned.set()
        # Waited for by counting, not by joining the pool's threads again: a join that a
        # signal interrupted (Ctrl-C, SIGTERM) can return at once the second time while
        # the thread still runs (CPython < 3.13), and the process would exit with a worker
        # mid-upload, leaving an S3 multipart upload open.
        with settled:
            while unsettled:
                settled.wait()
        pool.shutdown(wait=False)
        raise
    if failures:
        raise failures[0]


def check_format(remote: Remote, create: bool, tmp_dir: Path | None = None) -> int | None:
    """The remote's format version (1 or 2), refusing one this client does not know; with
    `create` (and a `tmp_dir` to write from), mark an empty remote as format 2.

    None when the remote has no marker (nothing was ever pushed there).
    """
    try:
        data = remote.read_range(layout.FORMAT_KEY, 0, 4096)
    except ObjectNotFound:
        if not create:
            return None
        assert tmp_dir is not None, "creating the marker needs a folder to write it from"
        put_bytes(remote, layout.FORMAT_KEY, layout.format_document(), tmp_dir)
        return layout.FORMAT_VERSION
    return layout.check_format(data, remote.display_url)


#: Remotes (by identity) whose format marker this process has read and accepted.
_READABLE: set[str] = set()
#: Their format versions.
_VERSIONS: dict[str, int] = {}
_READ_LOCK = threading.Lock()
#: How often each remote's marker was read (what the process knows of it starts again).
READS: dict[str, int] = {}


def check_readable(remote: Remote) -> int | None:
    """Refuse to read objects from a remote in a format this client does not know; its
    format version (None: no marker).

    Read once per remote and process: every download path asks, so a filter fetching
    thousands of objects reads the marker once. A remote without a marker passes (nothing
    was pushed there; the download itself then says what is missing)."""
    if remote.identity in _READABLE:
        return _VERSIONS.get(remote.identity)
    with _READ_LOCK:  # one read for threads that ask at once (one generation of READS)
        if remote.identity in _READABLE:
            return _VERSIONS.get(remote.identity)
        version = check_format(remote, create=False)
        if version is not None:
            _VERSIONS[remote.identity] = version
            READS[remote.identity] = READS.get(remote.identity, 0) + 1
            _READABLE.add(remote.identity)
    return version


def put_bytes(remote: Remote, key: str, data: bytes, tmp_dir: Path) -> None:
    """Upload a small in-memory document through the file-based interface."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    path = tmp_dir / f"put-{os.getpid()}-{secrets.token_hex(8)}"
    try:
        path.write_bytes(data)
        remote.put_file(key, path)
    finally:
        path.unlink(missing_ok=True)
