"""The filter's download scheduler: the objects a checkout needs, fetched on threads of
their own while the filter goes on answering git.

Owns: the remote and chunk index the filter fetches with, the thread pool, one download
per object however many files need it, the downloads asked for but not started yet, the
fetch-ahead of a clone, the objects this process hashed itself (`verified`), and naming
the pack the downloads wrote once they are in. git-lfs's transfer queue (tq) is the
model: the filter loop drives it (asks, starts, waits) and it knows nothing of git.
Must not: know git's requests or the work tree, or print.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from gitmlx.checkout import filters
from gitmlx.errors import MlxError
from gitmlx.format.pointer import Pointer
from gitmlx.format.sizes import human_size

if TYPE_CHECKING:
    from gitmlx.checkout.fetch_worker import WorkerClient
    from gitmlx.checkout.progress import CheckoutProgress
    from gitmlx.context import RepoContext
    from gitmlx.remotes.base import Remote
    from gitmlx.store.chunk_index import ChunkIndex

#: One download per (oid, size): a pointer lying about its size gets its own (failing) fetch.
ObjectKey = tuple[str, int]

#: The interpreter's switch interval (seconds) once downloads run beside the thread
#: answering git (Python's default: 0.005).
SWITCH_INTERVAL = 0.001

#: Notified whenever any download ends (`Download.end`): the one thing waiters wait on.
_ENDED = threading.Condition()


class Download:
    """One object's download: done when the object is in the store, or failed with why not.

    Not a concurrent.futures.Future: each Future holds a Condition (a lock, a deque, bound
    methods), about 1.6 KiB, and a clone of 100,000 files held one per file until the
    file was placed. All downloads share one condition instead (`_ENDED`).
    """

    __slots__ = ("_ended", "_failure")

    def __init__(self) -> None:
        self._ended = False
        self._failure: BaseException | None = None

    def done(self) -> bool:
        return self._ended

    def exception(self) -> BaseException | None:
        """Wait for the end; the failure, or None when the object is in the store."""
        if not self._ended:
            with _ENDED:
                while not self._ended:
                    _ENDED.wait()
        return self._failure

    def end(self, failure: BaseException | None = None) -> None:
        with _ENDED:
            self._failure = failure
            self._ended = True
            _ENDED.notify_all()


#: The download of every object already in the store: one shared, ended one.
_DONE = Download()
_DONE.end()


def _worker_wanted() -> bool:
    """Whether batches from a directory remote go to a worker process (checkout/
    fetch_worker.py); GIT_MLX_NO_FETCH_WORKER=1 keeps them on the download threads."""
    return not os.environ.get("GIT_MLX_NO_FETCH_WORKER")


def _key(pointer: Pointer) -> ObjectKey:
    return pointer.oid, pointer.size


def finished(failure: BaseException | None = None) -> Download:
    """A download that has already ended (with `failure`, if given)."""
    if failure is None:
        return _DONE
    download = Download()
    download.end(failure)
    return download


def wait_for_any(downloads: Iterable[Download]) -> None:
    """Block until one of `downloads` has ended."""
    pending = list(downloads)
    with _ENDED:
        while not any(d.done() for d in pending):
            _ENDED.wait()


class Downloads:
    """The scheduler the module docstring describes, for one filter process.

    Just over 250 lines: each method is one step of an object's way in (asked, started,
    running, verified, its pack named) and they share the pool and the in-flight table
    under one lock; split in two, every step would cross the lock between the halves."""

    def __init__(
        self,
        ctx: RepoContext,
        wanted: Callable[[str], bool],
        warn: Callable[[str], None] | None = None,
        progress: CheckoutProgress | None = None,
    ) -> None:
        self._ctx = ctx
        #: Told of each download's bytes and end (the filter's progress display).
        self.progress = progress
        self._warn = warn  # told if the chunk index had to start over
        #: Whether a path is in mlx.fetchinclude / mlx.fetchexclude (fetch-ahead skips the rest).
        self._wanted = wanted
        self._remote: Remote | None = None
        self._index: ChunkIndex | None = None
        #: Objects this process downloaded (and so hashed) itself: no need to hash again.
        self.verified: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._by_key: dict[ObjectKey, Download] = {}
        #: Downloads asked for but not started yet (see `start_queued`).
        self._queued: list[tuple[Pointer, Download]] = []
        #: Downloads started ahead of git's requests (`ahead`); None: not decided yet.
        self._ahead: dict[ObjectKey, Download] | None = None
        self._ahead_left = 0
        #: Batches from a directory remote are fetched by a process of their own (None:
        #: on the download threads, as from S3, whose waits threads hide).
        self._worker: WorkerClient | None = None

    # -- one object, now, on the calling thread ----------------------------------------------

    def fetch(self, pointer: Pointer) -> None:
        """Bring `pointer`'s object into the store (MlxError saying why it could not)."""
        from gitmlx.transfer.download import fetch_one  # only a missing object pays for the transfer code

        remote = self._remote_or_open()
        shown = self.progress
        moved = (lambda n: shown.moved(pointer, n)) if shown is not None else None
        try:
            fetch_one(self._ctx.store, remote, pointer, moved, index=self._index)
        except (MlxError, OSError) as exc:
            raise self._failure(pointer, exc) from exc
        finally:
            if shown is not None:
                shown.fetched(pointer)
        self.verified.add(pointer.oid)

    def _failure(self, pointer: Pointer, exc: BaseException) -> BaseException:
        """The error to report for an object that could not be fetched (others unchanged)."""
        if isinstance(exc, MlxError):
            thin = (
                " (mlx.thin is set: the local store keeps no copy of checked-out artifacts)" if self._ctx.thin else ""
            )
            return MlxError(
                f"object {pointer.short_oid} ({human_size(pointer.size)}): {exc.message}{thin}",
                exc.hint or "fix the artifact remote, then run 'git mlx pull'",
            )
        if isinstance(exc, OSError):  # disk full, permissions: expected, not a bug
            return MlxError(
                f"object {pointer.short_oid} ({human_size(pointer.size)}): {exc.strerror or exc} "
                f"while writing to the local store '{self._ctx.store.root}'",
                "free space there (or set mlx.cache to a store elsewhere), then run 'git mlx pull'",
            )
        return exc

    def _remote_or_open(self) -> Remote:
        if self._remote is None:
            self._remote = self._ctx.open_remote()
        return self._remote

    # -- many objects, on the pool ---------------------------------------------------------

    def _open_pool(self) -> MlxError | None:
        """Open the remote, the chunk index and the download threads; the error when there
        is no usable remote (none configured, untrusted endpoint, bad URL)."""
        if self._pool is None:
            try:
                remote = self._remote_or_open()
            except MlxError as exc:
                return exc
            from gitmlx.transfer.common import index_for

            self._index = index_for(self._ctx.store, self._warn)
            workers = self._ctx.config.integer("mlx.concurrency")
            if remote.copies_are_local:
                # A directory remote has no latency to hide: its downloads are work for
                # the CPUs, and git and the thread answering it need one of them. More
                # threads only fight over the interpreter lock with that thread.
                workers = min(workers, max(1, (os.cpu_count() or 2) - 1))
                if _worker_wanted():
                    from gitmlx.checkout.fetch_worker import WorkerClient

                    self._worker = WorkerClient(self._ctx.top)
            # The thread answering git waits for each request, then needs the interpreter
            # at once: with download threads holding it, it waited up to the default 5 ms
            # switch interval per request (bench/README.md, "switch interval").
            sys.setswitchinterval(SWITCH_INTERVAL)
            self._pool = ThreadPoolExecutor(max_workers=workers)
        return None

    def delayed(self, pointer: Pointer) -> Download:
        """The download of an object git will ask for again (the "delay" capability); it
        starts with the rest of the queue, when git has asked for everything."""
        unusable = self._open_pool()
        if unusable is not None:
            return finished(unusable)
        return self._queue(pointer)

    def for_placement(self, path: str, pointer: Pointer) -> Download:
        """Done when `pointer`'s object is in the store (or could not be fetched), for a
        file this process places itself.

        A clone fetches ahead (`ahead`): from S3 to hide its latency, from a directory
        remote because the worker process (fetch_worker.py) downloads while this one
        answers git. Without the worker (GIT_MLX_NO_FETCH_WORKER), a directory remote's
        downloads start every BATCH_OBJECTS requests instead: on this process's threads,
        listing HEAD first cost a clone of 20,000 files more time before git's first
        answer than the early start saved.
        """
        pending = self.pending(pointer)
        if pending is not None:
            return pending
        try:
            stored = self._ctx.store.size(pointer.oid)  # one lookup: this runs for every file
        except FileNotFoundError:
            stored = None
        if stored == pointer.size:
            return finished()
        if stored is not None:
            lying = filters.check_stored_size(self._ctx.store, pointer, path)
            if lying is not None:
                return finished(lying)
            if self._ctx.store.has(pointer.oid):  # else quarantined just now: fetch it
                return finished()
        if self._ahead_pays():
            ahead = self.ahead(path, pointer)
            if ahead is not None:
                return ahead
            if stored is None and self._ctx.store.has(pointer.oid):
                return self.for_placement(path, pointer)  # its download ended just now (`_landed`)
        # A download that ended with a failure (a running one was found above; one that
        # landed since is in the store, since objects are stored before their download ends).
        known = self._by_key.get(_key(pointer))
        if known is not None:
            return known
        unusable = self._open_pool()
        if unusable is not None:
            future = self._by_key[_key(pointer)] = finished(unusable)
            return future
        future = self._queue(pointer)
        from gitmlx.transfer.batch import BATCH_BELOW, BATCH_OBJECTS

        if pointer.size >= BATCH_BELOW or len(self._queued) >= BATCH_OBJECTS:
            self.start_queued()
        return future

    def _ahead_pays(self) -> bool:
        """Whether a placed file's download is worth a fetch-ahead: from a remote whose
        reads wait (S3), or from a directory remote through the worker process, whose
        downloads cost the thread answering git nothing; False without a usable remote."""
        if self._ahead is not None:
            return True  # decided: `ahead` answers from what it started
        try:
            remote = self._remote_or_open()
        except MlxError:
            return False
        return not remote.copies_are_local or _worker_wanted()

    def pending(self, pointer: Pointer) -> Download | None:
        """The running (or queued) download of `pointer`'s object, else None; no store
        lookup (a miss costs three stats and a listing check): an object already on its
        way, for another file with the same content or from the fetch-ahead, is waited for."""
        key = _key(pointer)
        download = self._ahead.get(key) if self._ahead else None
        if download is None:
            download = self._by_key.get(key)
        return download if download is not None and not download.done() else None

    def _queue(self, pointer: Pointer) -> Download:
        future = self._by_key.get(_key(pointer))
        if future is None:
            future = self._by_key[_key(pointer)] = Download()
            self._queued.append((pointer, future))
        return future

    def start_queued(self) -> None:
        """Start the downloads asked for so far.

        Not one at each request: git sends every smudge request of a checkout first, one
        round trip each, and download threads competing for the interpreter made each
        round trip slower than the downloads gained by starting early. Small objects go in
        batches, one remote read for many (`fetch_batch`): fetched one by one, their
        interpreter time is what the thread answering git then waits for.
        """
        if not self._queued:
            return
        from gitmlx.transfer.batch import batches

        queued, self._queued = self._queued, []
        futures = {_key(p): f for p, f in queued}
        groups, large = batches([p for p, _ in queued])
        assert self._pool is not None  # nothing is queued without it
        for group in groups:
            self._pool.submit(self._fetch_batch_into, group, futures)
        for pointer in large:
            self._pool.submit(self._fetch_into, pointer, futures[_key(pointer)])

    def _landed(self, key: ObjectKey, futures: dict[ObjectKey, Download]) -> None:
        """An object is in the store: the tables of downloads let go of it (requests for
        it now find it in the store; whoever waits holds its Download). A clone of 100,000
        files kept every one to the end."""
        futures.pop(key, None)
        self._by_key.pop(key, None)

    def _fetch_into(self, pointer: Pointer, future: Download) -> None:
        try:
            self.fetch(pointer)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for it
            future.end(exc)
        else:
            self._landed(_key(pointer), {})
            future.end()

    def _fetch_batch_into(self, group: list[Pointer], futures: dict[ObjectKey, Download]) -> None:
        from gitmlx.transfer.batch import fetch_batch

        def done(pointer: Pointer, failure: BaseException | None) -> None:
            if self.progress is not None:
                self.progress.fetched(pointer)
            key = _key(pointer)
            future = futures[key]
            if failure is None:
                self.verified.add(pointer.oid)
                self._landed(key, futures)
                future.end()
            else:
                future.end(self._failure(pointer, failure))

        try:
            if self._worker is not None:
                stored = self._worker.fetch(group)
                for pointer in group:
                    if _key(pointer) in stored:
                        done(pointer, None)  # the worker verified it
                group = [p for p in group if _key(p) not in stored]  # fetched here: failures as ever
            if group:
                fetch_batch(self._ctx.store, self._remote_or_open(), self._index, group, done)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - a bug: every object not done yet fails with it
            for pointer in group:
                future = futures.get(_key(pointer))  # gone: it landed
                if future is not None and not future.done():
                    future.end(exc)

    def finish_pack(self) -> None:
        """Every download is in: name their pack now, so the hooks git runs before this
        process ends find the objects too; the manifest shards held for them are let go."""
        self._ctx.store.finish_pack()
        from gitmlx.transfer import shards

        shards.release_held()

    @property
    def started(self) -> bool:
        """Whether any download was started (the pool is open)."""
        return self._pool is not None

    # -- the first checkout of HEAD (a clone): download ahead of git's requests --------------

    def ahead(self, path: str, pointer: Pointer) -> Download | None:
        """The download of `pointer` if it belongs to a fetch-ahead, else None (delay it)."""
        if self._ahead is None:
            self._ahead = self._start_ahead(path, pointer)
        return self._ahead.get(_key(pointer))

    def _start_ahead(self, path: str, pointer: Pointer) -> dict[ObjectKey, Download]:
        """Start downloading HEAD's small artifacts when git is writing all of them.

        With `delay`, each file costs git a round trip before any download starts, and git
        writes nothing meanwhile. When the work tree has no index yet (a clone, or the
        first checkout after `clone --no-checkout`), is not sparse, and git's first request
        for a missing object is for HEAD's first file whose object is missing, in HEAD's
        version, git is writing every artifact of HEAD, in path order: they are downloaded
        in that order from the start, and each request waits for its own object instead
        of being delayed. Anything else (large objects, files HEAD does not have) is
        delayed as before.
        """
        ctx = self._ctx
        if ctx.paths.work_tree is None or (ctx.paths.git_dir / "index").exists():
            return {}
        if ctx.config.flag("core.sparsecheckout"):
            return {}
        from gitmlx.git import scan
        from gitmlx.transfer.batch import BATCH_BELOW, batches

        try:
            missing = [f for f in scan.iter_pointers_in_tree(ctx.top, "HEAD") if not ctx.store.has(f.pointer.oid)]
        except MlxError:
            return {}
        # git asks in path order, and objects already stored never get here: this must be
        # HEAD's first file whose object is missing, in HEAD's version.
        missing.sort(key=lambda f: f.path.encode("utf-8", "surrogateescape"))
        if not missing or missing[0].path != path or missing[0].pointer.oid != pointer.oid:
            return {}
        todo: dict[ObjectKey, Pointer] = {}
        for f in missing:
            p = f.pointer.as_mlx()
            if p.size < BATCH_BELOW and self._wanted(f.path):
                todo.setdefault(_key(p), p)
        if not todo or self._open_pool() is not None:
            return {}
        futures: dict[ObjectKey, Download] = {key: Download() for key in todo}
        groups, _ = batches(list(todo.values()))
        self._ahead_left = len(groups)
        assert self._pool is not None
        for group in groups:
            self._pool.submit(self._fetch_ahead_batch, group, futures)
        return futures

    def _fetch_ahead_batch(self, group: list[Pointer], futures: dict[ObjectKey, Download]) -> None:
        self._fetch_batch_into(group, futures)
        with self._lock:
            self._ahead_left -= 1
            last = self._ahead_left == 0
        if last:
            self.finish_pack()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        if self._worker is not None:
            self._worker.close()
        if self._index is not None:
            self._index.close()
