"""What one filter invocation knows: its repository, store, fetch selection and
(once a missing object needs it) its remote.

Owns: the policy around smudge — skip-smudge, mlx.fetchinclude / mlx.fetchexclude,
fetching a missing object, and what happens when that fails: the file is checked out as
its pointer, one `error:` line names it, and it is recorded so the post-checkout /
post-merge hook can fail the command and say how to finish (`git mlx pull`).

Why not answer `status=error`: with `filter.mlx.required`, git dies at the first failed
smudge ("fatal: <path>: smudge filter mlx failed"), leaving a half-switched work tree and
every later file unwritten. A pointer is what git itself holds for the file, so the work
tree stays consistent and `git status` clean.
Shared by the long-running filter and the one-shot `clean` / `smudge` commands.
Must not: print (warnings go to the callback it is given).
"""

from __future__ import annotations

import itertools
import os
import stat
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING

from gitmlx.checkout import filters, handoff
from gitmlx.checkout.statcache import StatCache
from gitmlx.config import split_patterns
from gitmlx.context import RepoContext
from gitmlx.errors import IntegrityError, MlxError
from gitmlx.format import patterns
from gitmlx.format import pointer as pointers
from gitmlx.format.pointer import MAX_POINTER_SIZE, Pointer
from gitmlx.format.sizes import human_size
from gitmlx.git.filter_protocol import DELAYED
from gitmlx.remotes.base import Remote
from gitmlx.store.chunk_index import ChunkIndex

if TYPE_CHECKING:
    from gitmlx.checkout.spare import SpareFile


class FilterSession:
    def __init__(
        self,
        skip_smudge: bool = False,
        warn: Callable[[str], None] | None = None,
        error: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.ctx = RepoContext()
        self._skip = skip_smudge
        self._skip_config: bool | None = None
        self._warn = warn
        self._error = error
        self._remote: Remote | None = None
        self._selection: tuple[list[str], list[str]] | None = None
        self._index: ChunkIndex | None = None
        self._index_pointers: dict[str, bytes] | None = None
        self._limits: tuple[int, int] | None = None
        self._stat_cache: StatCache | None = None
        #: Objects this process downloaded (and so hashed) itself: no need to hash again.
        self._verified: set[str] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._by_oid: dict[tuple[str, int], Future[None]] = {}
        #: Downloads asked for but not started yet (see `_start_queued`).
        self._queued: list[tuple[Pointer, Future[None]]] = []
        self._pending: dict[str, tuple[Pointer, Future[None]]] = {}
        self._ready: dict[str, tuple[Pointer, Future[None]]] = {}
        #: Whether this process left a file for placement outside git (mlx.smudgelimit).
        self.deferred = False
        #: Downloads started ahead of git's requests (`_fetch_ahead`); None: not decided yet.
        self._ahead: dict[tuple[str, int], Future[None]] | None = None
        self._ahead_left = 0
        #: The last file whose content git took for a checkout, until git's next message
        #: shows it has written it (see `_check_written`).
        self._written: tuple[str, Pointer] | None = None
        # Files this process places itself (see "files gitmlx places" below).
        #: Answered with their pointer text, which git has not written yet (path, pointer,
        #: text, download).
        self._unwritten: list[tuple[str, Pointer, bytes, Future[None]]] = []
        #: Written by git as pointers, waiting to be placed, by path.
        self._placing: dict[str, tuple[Pointer, bytes, Future[None]]] = {}
        #: Placed files whose stat data the stat cache and git's index still need.
        self._placed: list[tuple[str, Pointer, bytes, os.stat_result]] = []
        self._to_refresh: dict[str, tuple[Pointer, os.stat_result]] = {}
        #: Whether this checkout has delayed a file so that git ends it with list_available_blobs.
        self._barrier = False
        #: Pointer text and download of the file delayed for that.
        self._barrier_files: dict[str, tuple[bytes, Future[None]]] = {}
        #: This process's claim on the files it places itself (`handoff.Claim`).
        self._claim = handoff.Claim(self.ctx.paths.git_dir)
        #: Work-tree folders found to be inside the work tree (`place_over_pointer`).
        self._checked_dirs: set[str] = set()
        #: The file each placement fills and swaps in (`spare.SpareFile`), once needed.
        self._spare: SpareFile | None = None

    @property
    def skip_smudge(self) -> bool:
        if self._skip_config is None:
            self._skip_config = self.ctx.config.flag("mlx.skipsmudge")
        return self._skip or self._skip_config

    def wanted(self, path: str) -> bool:
        """mlx.fetchinclude / mlx.fetchexclude: unwanted files stay pointers."""
        if self._selection is None:
            config = self.ctx.config
            self._selection = (
                split_patterns(config.value("mlx.fetchinclude")),
                split_patterns(config.value("mlx.fetchexclude")),
            )
        return patterns.selected(path, *self._selection)

    def fetch(self, pointer: Pointer) -> None:
        from gitmlx.transfer.download import fetch_one  # only a missing object pays for the transfer code

        remote = self._remote_or_open()
        try:
            fetch_one(self.ctx.store, remote, pointer, index=self._index)
        except (MlxError, OSError) as exc:
            raise self._fetch_failure(pointer, exc) from exc
        self._verified.add(pointer.oid)

    def _fetch_failure(self, pointer: Pointer, exc: BaseException) -> BaseException:
        """The error to report for an object that could not be fetched (others unchanged)."""
        if isinstance(exc, MlxError):
            return MlxError(
                f"object {pointer.short_oid} ({human_size(pointer.size)}): {exc.message}",
                exc.hint or "fix the artifact remote, then run 'git mlx pull'",
            )
        if isinstance(exc, OSError):  # disk full, permissions: expected, not a bug
            return MlxError(
                f"object {pointer.short_oid} ({human_size(pointer.size)}): {exc.strerror or exc} "
                f"while writing to the local store '{self.ctx.store.root}'",
                "free space there (or set mlx.cache to a store elsewhere), then run 'git mlx pull'",
            )
        return exc

    def _remote_or_open(self) -> Remote:
        if self._remote is None:
            self._remote = self.ctx.open_remote()
        return self._remote

    def clean(self, source: filters.Source, path: str = "") -> bytes:
        self._git_moved_on()
        if patterns.never_tracked(path):
            # git holds these files in memory itself (attr.c caps .gitattributes at 100 MiB).
            return source.read()
        known = self._untouched_since_placed(path)
        if known is not None:
            return filters.clean_unchanged(source, known, path)
        return filters.clean(source, self.ctx.store, self._index_pointer(path), path, self._warn)

    def _untouched_since_placed(self, path: str) -> bytes | None:
        """The pointer gitmlx recorded when it wrote `path`, if the file is exactly as left."""
        if not path or self.ctx.paths.work_tree is None:
            return None
        try:
            st = os.lstat(self.ctx.paths.work_tree / path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        if self._stat_cache is None:
            self._stat_cache = StatCache(self.ctx.paths.git_dir)
        return self._stat_cache.lookup(path, st)

    def _index_pointer(self, path: str) -> bytes | None:
        """The pointer text git's index holds for `path` (read once per process)."""
        if not path or self.ctx.paths.work_tree is None:
            return None
        if self._index_pointers is None:
            from gitmlx.git import scan

            # git runs this filter only on paths with filter=mlx: no attribute check needed.
            found = scan.pointers_in_index(self.ctx.top, tracked_only=False)
            self._index_pointers = {f.path: f.pointer.encode() for f in found}
        return self._index_pointers.get(path)

    def smudge(self, source: filters.Source, path: str, can_delay: bool = False) -> Callable[[filters.Sink], None]:
        """The body that writes `path`'s content, or DELAYED (only with `can_delay`)."""
        self._git_moved_on()
        if path in self._ready:
            return self._finish_delayed(path)  # git's second request, with empty content
        self._wait_placing(path)
        restore = not self.skip_smudge and self.wanted(path)
        fetch = self.fetch if restore else None
        if restore:
            head = filters.read_head(source)
            pointer = pointers.parse(head) if len(head) < MAX_POINTER_SIZE else None
            if pointer is not None:
                if can_delay and self._places(pointer):
                    return self._place_later(path, pointer, head)
                if can_delay and not self.ctx.store.has(pointer.oid):
                    ahead = self._fetch_ahead(path, pointer)
                    if ahead is not None:
                        return self._deliver(path, pointer, ahead)
                    self._start_delayed(path, pointer)
                    return DELAYED
                if self._defers(pointer):
                    return self._defer(path, pointer, head)
            source = filters.Prefixed(head, source)
        else:
            pointer = None
        body = filters.prepare_smudge(
            source,
            self.ctx.store,
            fetch,
            path,
            self._warn,
            lambda p, exc: self._unavailable(path, exc),
            self._verified,
        )
        return self._watched(path, pointer, body) if can_delay and pointer is not None else body

    # -- objects above mlx.smudgelimit outside a checkout: left to the post-checkout hook ----

    def _limit(self) -> tuple[int, int]:
        if self._limits is None:
            config = self.ctx.config
            self._limits = (config.size("mlx.smudgelimit"), config.size("mlx.directplace"))
        return self._limits

    def _defers(self, pointer: Pointer) -> bool:
        """Whether smudge answers with the pointer, outside a checkout, and leaves the file
        to the post-checkout / post-merge hook (or to this process's exit, for commands
        that run none): above mlx.smudgelimit, git would hold the whole file in memory."""
        memory, _ = self._limit()
        return 0 < memory < pointer.size

    def _defer(self, path: str, pointer: Pointer, head: bytes) -> Callable[[filters.Sink], None]:
        """Check out the pointer now; the hook streams the content into place afterwards."""
        if not self.ctx.store.has(pointer.oid):
            try:
                self.fetch(pointer)
            except MlxError as exc:
                self._unavailable(path, exc)
                return lambda sink: sink.write(head)
        self._record_deferred(path, pointer)
        return lambda sink: sink.write(head)

    def _record_deferred(self, path: str, pointer: Pointer) -> None:
        """Leave `path` to the placing step; vouch for its object if this process hashed it."""
        git_dir = self.ctx.paths.git_dir
        if pointer.oid in self._verified:
            handoff.vouch(git_dir, pointer.oid, self.ctx.store.path(pointer.oid))
        handoff.record_path(git_dir, handoff.DEFERRED_FILE, path)
        self.deferred = True

    def _unavailable(self, path: str, exc: MlxError) -> None:
        if self._error is not None:
            self._error(f"cannot restore '{path}', left as a pointer: {exc.message}", exc.hint)
        handoff.record_path(self.ctx.paths.git_dir, handoff.UNRESTORED_FILE, path)

    # -- files gitmlx places: git writes the pointer, this process the content -------------

    def _places(self, pointer: Pointer) -> bool:
        """Whether, in a checkout, git gets the pointer and this process puts the content in
        place: from mlx.directplace up (default: every file), and always above
        mlx.smudgelimit.

        git writes a filter's output straight under the file's final name (entry.c): a
        git killed or out of space mid-write leaves a short file there, wrong bytes that
        the next `git add -A` would commit. A pointer is one small write; the content
        then goes to a temporary file, is checked, and is renamed over the pointer. git
        would also hold the whole output in memory before writing it; this process
        copies with the kernel while git writes the next pointer (docs/design.md,
        "Checkout").
        """
        memory, direct = self._limit()
        return 0 < direct <= pointer.size or 0 < memory < pointer.size

    def _place_later(self, path: str, pointer: Pointer, text: bytes) -> Callable[[filters.Sink], None]:
        download = self._object_future(path, pointer)
        self._claim.add(path)
        if not self._barrier:
            # One file delayed per checkout: git then ends the checkout with
            # list_available_blobs, which is where this process knows git has written
            # every pointer and can finish the placements before git goes on.
            self._barrier = True
            done: Future[None] = Future()
            done.set_result(None)
            self._pending[path] = (pointer, done)
            self._barrier_files[path] = (text, download)
            return DELAYED
        return self._answer_pointer(path, pointer, text, download)

    def _object_future(self, path: str, pointer: Pointer) -> Future[None]:
        """Done when `pointer`'s object is in the store (or could not be fetched)."""
        done: Future[None] = Future()
        try:
            stored = self.ctx.store.size(pointer.oid)  # one lookup: this runs for every file
        except FileNotFoundError:
            stored = None
        if stored is not None:
            lying = filters.check_stored_size(self.ctx.store, pointer, path) if stored != pointer.size else None
            if lying is not None:
                done.set_exception(lying)
                return done
            if self.ctx.store.has(pointer.oid):  # else quarantined just now: fetch it
                done.set_result(None)
                return done
        ahead = self._fetch_ahead(path, pointer)
        if ahead is not None:
            return ahead
        key = (pointer.oid, pointer.size)
        future = self._by_oid.get(key)
        if future is not None:
            return future
        future = self._by_oid[key] = Future()
        unusable = self._open_pool()
        if unusable is not None:
            future.set_exception(unusable)
            return future
        self._queued.append((pointer, future))
        from gitmlx.transfer.download import BATCH_BELOW, BATCH_OBJECTS

        if pointer.size >= BATCH_BELOW or len(self._queued) >= BATCH_OBJECTS:
            self._start_queued()
        return future

    def _answer_pointer(
        self, path: str, pointer: Pointer, text: bytes, download: Future[None]
    ) -> Callable[[filters.Sink], None]:
        def run(sink: filters.Sink) -> None:
            sink.write(text)
            self._unwritten.append((path, pointer, text, download))

        return run

    def _git_moved_on(self) -> None:
        """git sent another message: it has written every file it took from us before."""
        self._check_written()
        unwritten, self._unwritten = self._unwritten, []
        for path, pointer, text, download in unwritten:
            self._placing[path] = (pointer, text, download)

    def idle(self) -> None:
        """Place the files git has written whose objects are in, while git writes the next.

        Called after each answer, on the thread that talks to git: placing on threads of
        their own made every request of a 2,000-file clone slower than the placing saved
        (the interpreter's lock changing hands some 200,000 more times), and git has
        work to do with each answer anyway.
        """
        # Only the oldest few: git writes in path order and downloads run in that order,
        # and scanning every waiting file at each request would cost quadratic time when
        # downloads lag behind; the end of the checkout places whatever is left.
        ready = [path for path in itertools.islice(self._placing, 16) if self._placing[path][2].done()]
        for path in ready:
            self._place(path, *self._placing.pop(path))

    def _wait_placing(self, path: str) -> None:
        """git is about to write `path` again (one command checking out twice, as stash
        does): its previous version must be placed before, not over, that write."""
        placing = self._placing.pop(path, None)
        if placing is not None:
            self._place(path, *placing)

    def _place(self, path: str, pointer: Pointer, text: bytes, download: Future[None]) -> None:
        exc = download.exception()  # waits for the download
        if exc is not None:
            if not isinstance(exc, MlxError):
                exc = MlxError(f"internal error ({type(exc).__name__}: {exc})", "run 'git mlx pull'")
            self._unavailable(path, exc)
            return
        work_tree = self.ctx.paths.work_tree
        assert work_tree is not None  # git offers can-delay only when writing a work tree
        try:
            try:
                st = self._place_over_pointer(work_tree, path, pointer, text)
            except IntegrityError:
                # The local copy does not hash to its oid: out of the way with it, and
                # place a good copy from the remote instead.
                filters.quarantine(self.ctx.store, pointer.oid)
                try:
                    self.fetch(pointer)
                except MlxError as exc:
                    raise MlxError(
                        f"the local copy of object {pointer.short_oid} was corrupt (moved to the store's bad/), "
                        f"and fetching a good one failed: {exc.message}",
                        exc.hint,
                    ) from exc
                st = self._place_over_pointer(work_tree, path, pointer, text)
        except MlxError as failure:
            self._unavailable(path, failure)
        except OSError as failure:  # a full disk, permissions: the pointer stays, nothing partial
            self._unavailable(
                path,
                MlxError(
                    f"{failure.strerror or failure} while writing it",
                    "free space (or fix the permissions), then run 'git mlx checkout'",
                ),
            )
        else:
            if st is not None:
                self._placed.append((path, pointer, text, st))

    def _place_over_pointer(self, work_tree: Path, path: str, pointer: Pointer, text: bytes) -> os.stat_result | None:
        from gitmlx.checkout import worktree
        from gitmlx.checkout.spare import SpareFile

        verified = pointer.oid in self._verified
        if self._spare is None:
            self._spare = SpareFile(self.ctx.paths.git_dir)
        return worktree.place_over_pointer(
            self.ctx.store, work_tree, path, pointer, text, verified, self._checked_dirs, self._spare
        )

    def _finish_placements(self) -> None:
        """Place every file left and record what was placed in the stat cache (git's index
        write, just after, runs clean on racily clean files: it must find them)."""
        if self._queued:
            self._start_queued()
        while self._placing:
            path = next(iter(self._placing))
            self._place(path, *self._placing.pop(path))
        done, self._placed = self._placed, []
        if not done:
            return
        if self._stat_cache is None:
            self._stat_cache = StatCache(self.ctx.paths.git_dir)
        with self._stat_cache.batch():
            for path, pointer, text, st in done:
                self._stat_cache.record(path, st, text)
                self._to_refresh[path] = (pointer, st)

    def _finish_checkout(self) -> None:
        self._finish_placements()
        if self._spare is not None:
            self._spare.remove()
        # Dropped now, not when git closes this process: its post-checkout hook then has
        # nothing to do and is not started. Killed before the index refresh, the placed
        # files are found by their stat-cache records (the refresh is only a speed-up).
        self._claim.drop()
        self._barrier = False
        if self._pool is not None:
            # Every download is in: name their pack now, so the hooks git runs before this
            # process ends find the objects too.
            self.ctx.store.finish_pack()

    def _refresh_index(self) -> None:
        """Give git's index the placed files' stat data (it holds the pointers' since git
        wrote them), so `git status` does not read them. git has written its index and
        let go of its lock by the time it closes this process."""
        if not self._to_refresh or self.ctx.paths.work_tree is None:
            return
        from gitmlx.checkout import worktree
        from gitmlx.git.scan import TrackedFile

        placed = {path: (TrackedFile(path, pointer), st) for path, (pointer, st) in self._to_refresh.items()}
        self._to_refresh = {}
        try:
            worktree.refresh_index(self.ctx.paths.work_tree, placed)
        except (MlxError, OSError):
            pass  # the index is locked by another command, or gone: the stat cache answers

    # -- the "delay" capability: download in parallel while git goes on ---------------------

    def _open_pool(self) -> MlxError | None:
        """Open the remote, the chunk index and the download threads; the error when there
        is no usable remote (none configured, untrusted endpoint, bad URL)."""
        if self._pool is None:
            try:
                self._remote_or_open()
            except MlxError as exc:
                return exc
            from gitmlx.transfer.common import index_for

            self._index = index_for(self.ctx.store)
            workers = self.ctx.config.integer("mlx.concurrency")
            if getattr(self._remote, "copies_are_local", False):
                # A directory remote has no latency to hide: its downloads are work for
                # the CPUs, and git and the thread answering it need one of them. More
                # threads only fight over the interpreter lock with that thread (py-spy
                # of a 2,000-file clone on 2 CPUs: 8 download threads mostly waited for
                # it; 2 threads were 0.1-0.2 s faster than 8 in 5 of 6 interleaved
                # clones, 1 thread 0.1 s faster than 2 in two runs of 5).
                workers = min(workers, max(1, (os.cpu_count() or 2) - 1))
            self._pool = ThreadPoolExecutor(max_workers=workers)
        return None

    def _start_delayed(self, path: str, pointer: Pointer) -> None:
        unusable = self._open_pool()
        if unusable is not None:
            # This file is left as its pointer and named, and the rest of the checkout goes on.
            failed: Future[None] = Future()
            failed.set_exception(unusable)
            self._pending[path] = (pointer, failed)
            return
        key = (pointer.oid, pointer.size)  # a pointer lying about the size gets its own (failing) fetch
        future = self._by_oid.get(key)
        if future is None:
            future = self._by_oid[key] = Future()
            self._queued.append((pointer, future))
        self._pending[path] = (pointer, future)

    def _start_queued(self) -> None:
        """Start the downloads git asked for, now that it has asked for all of them.

        Not at each request: git sends every smudge request of a checkout first, one round
        trip each, and download threads competing for the interpreter made each round trip
        slow (a clone of 2,000 small files: 1.9 s to answer the requests with downloads
        running, 0.45 s without them, and the downloads are done sooner after that).
        Small objects go in batches, one remote read for many (`fetch_batch`): fetched one
        by one, the 2,000 small files cost 1.1 s of interpreter time, which the thread
        answering git then waited for.
        """
        from gitmlx.transfer.download import batches

        queued, self._queued = self._queued, []
        futures = {(p.oid, p.size): f for p, f in queued}
        groups, large = batches([p for p, _ in queued])
        for group in groups:
            self._pool.submit(self._fetch_batch_into, group, futures)  # type: ignore[union-attr]
        for pointer in large:
            self._pool.submit(self._fetch_into, pointer, futures[(pointer.oid, pointer.size)])  # type: ignore[union-attr]

    def _fetch_into(self, pointer: Pointer, future: Future[None]) -> None:
        try:
            self.fetch(pointer)
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits for it
            future.set_exception(exc)
        else:
            future.set_result(None)

    def _fetch_batch_into(self, group: list[Pointer], futures: dict[tuple[str, int], Future[None]]) -> None:
        from gitmlx.transfer.download import fetch_batch

        def done(pointer: Pointer, failure: BaseException | None) -> None:
            future = futures[(pointer.oid, pointer.size)]
            if failure is None:
                self._verified.add(pointer.oid)
                future.set_result(None)
            else:
                future.set_exception(self._fetch_failure(pointer, failure))

        try:
            fetch_batch(self.ctx.store, self._remote_or_open(), self._index, group, done)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - a bug: every object not done yet fails with it
            for pointer in group:
                future = futures[(pointer.oid, pointer.size)]
                if not future.done():
                    future.set_exception(exc)

    def list_available(self) -> list[str]:
        """Block until some delayed download ends; those paths (git then asks for them).

        The empty list ends git's checkout: before it, every file this process places
        is in place or reported, so git's index write, its hooks and the command's exit
        status come after the work tree is complete."""
        self._git_moved_on()
        if not self._pending:
            self._finish_checkout()
            return []
        self._start_queued()
        wait([f for _, f in self._pending.values()], return_when=FIRST_COMPLETED)
        ready = [path for path, (_, f) in self._pending.items() if f.done()]
        for path in ready:
            self._ready[path] = self._pending.pop(path)
        if not self._pending:
            # Every download is in: name their pack now, so the hooks git runs before
            # this process ends find the objects too.
            self.ctx.store.finish_pack()
        return ready

    def _finish_delayed(self, path: str) -> Callable[[filters.Sink], None]:
        pointer, future = self._ready.pop(path)
        if path in self._barrier_files:
            text, download = self._barrier_files.pop(path)
            return self._answer_pointer(path, pointer, text, download)
        return self._deliver(path, pointer, future)

    def _deliver(self, path: str, pointer: Pointer, future: Future[None]) -> Callable[[filters.Sink], None]:
        """The body for a downloaded object (waiting for its download to end): its bytes,
        or its pointer when the download failed or gitmlx places the file itself."""
        exc = future.exception()
        if exc is not None:
            if not isinstance(exc, MlxError):
                raise exc
            self._unavailable(path, exc)
            return lambda sink: sink.write(pointer.encode())
        return self._watched(
            path,
            pointer,
            lambda sink: filters.stream_object(
                self.ctx.store, pointer, sink, path, verify=pointer.oid not in self._verified
            ),
        )

    # -- the first checkout of HEAD (a clone): download ahead of git's requests --------------

    def _fetch_ahead(self, path: str, pointer: Pointer) -> Future[None] | None:
        """The download of `pointer` if it belongs to a fetch-ahead, else None (delay it)."""
        if self._ahead is None:
            self._ahead = self._start_ahead(path, pointer)
        return self._ahead.get((pointer.oid, pointer.size))

    def _start_ahead(self, path: str, pointer: Pointer) -> dict[tuple[str, int], Future[None]]:
        """Start downloading HEAD's small artifacts when git is writing all of them.

        With `delay`, each file costs git a round trip before any download starts (2,000
        small files: 0.45 s of a 2.8 s clone), and git writes nothing meanwhile. When the
        work tree has no index yet (a clone, or the first checkout after `clone
        --no-checkout`), is not sparse, and git's first request for a missing object is for
        HEAD's first file whose object is missing, in HEAD's version, git is writing every
        artifact of HEAD, in path order: they are downloaded in that order from the start,
        and each request waits for its own object instead of being delayed. Anything else
        (large objects, files HEAD does not have) is delayed as before.
        """
        paths = self.ctx.paths
        if paths.work_tree is None or (paths.git_dir / "index").exists():
            return {}
        if self.ctx.config.flag("core.sparsecheckout"):
            return {}
        from gitmlx.git import scan
        from gitmlx.transfer.download import BATCH_BELOW, batches

        try:
            head = scan.pointers_in_tree(self.ctx.top, "HEAD")
        except MlxError:
            return {}
        # git asks in path order, and objects already stored never get here: this must be
        # HEAD's first file whose object is missing, in HEAD's version.
        missing = [
            f
            for f in sorted(head, key=lambda f: f.path.encode("utf-8", "surrogateescape"))
            if not self.ctx.store.has(f.pointer.oid)
        ]
        if not missing or missing[0].path != path or missing[0].pointer.oid != pointer.oid:
            return {}
        todo: dict[tuple[str, int], Pointer] = {}
        for f in missing:
            p = f.pointer.as_mlx()
            if p.size < BATCH_BELOW and self.wanted(f.path):
                todo.setdefault((p.oid, p.size), p)
        if not todo or self._open_pool() is not None:
            return {}
        futures: dict[tuple[str, int], Future[None]] = {key: Future() for key in todo}
        groups, _ = batches(list(todo.values()))
        self._ahead_left = len(groups)
        for group in groups:
            self._pool.submit(self._fetch_ahead_batch, group, futures)  # type: ignore[union-attr]
        return futures

    def _fetch_ahead_batch(self, group: list[Pointer], futures: dict[tuple[str, int], Future[None]]) -> None:
        self._fetch_batch_into(group, futures)
        with self._lock:
            self._ahead_left -= 1
            last = self._ahead_left == 0
        if last:
            # Every object is in: name their pack now, so the hooks git runs before this
            # process ends find them too.
            self.ctx.store.finish_pack()

    # -- files git could not finish writing --------------------------------------------------

    def _watched(
        self, path: str, pointer: Pointer, body: Callable[[filters.Sink], None]
    ) -> Callable[[filters.Sink], None]:
        """`body`, remembering that git is about to write `path` (checkouts only)."""

        def run(sink: filters.Sink) -> None:
            body(sink)
            self._written = (path, pointer)

        return run

    def _check_written(self) -> None:
        """Make sure git wrote the file it took from us last, now that it has moved on.

        git writes a filter's output straight to the file's final name (entry.c). When the
        write fails (a full disk: "error: unable to write file") or git is killed during it,
        git leaves a short file behind: wrong bytes under the right name, which the next
        `git add -A` would commit. git writes each file before its next request to this
        filter (or before it closes the pipe), so at that moment a file shorter than its
        object, holding a prefix of it, is such a leftover: its pointer goes back in its
        place (what git holds for it) and it is reported like a failed fetch.
        """
        if self._written is None or self.ctx.paths.work_tree is None:
            return
        path, pointer = self._written
        self._written = None
        try:
            st = os.lstat(os.path.join(self.ctx.paths.work_tree, path))
            if not stat.S_ISREG(st.st_mode) or st.st_size >= pointer.size:
                return
            target = self.ctx.paths.work_tree / path
            with open(target, "rb") as short:
                if not filters.holds_prefix(short, self.ctx.store, pointer):
                    return
        except OSError:
            return
        from gitmlx.checkout.objectfile import replace_with  # only a short file pays for it

        try:
            replace_with(target, pointer.encode())
            left = "put its pointer back"
        except OSError:
            try:
                os.unlink(target)
                left = "removed it"
            except OSError:
                left = "could not remove it either"
        if self._error is not None:
            self._error(
                f"git could not finish writing '{path}' ({st.st_size} of {pointer.size} bytes; "
                f"a full disk?): {left}, so no partial file stays",
                "free space, then run 'git mlx checkout' to restore it from the local store",
            )
        handoff.record_path(self.ctx.paths.git_dir, handoff.UNRESTORED_FILE, path)

    def close(self) -> None:
        self._git_moved_on()  # git has written the last file, or has gone away
        self._finish_placements()
        if self._spare is not None:
            self._spare.remove()
        try:
            self.ctx.store.sync()
        except OSError as exc:  # a full disk: the objects stay in the store's tmp/, not lost
            if self._error is not None:
                self._error(
                    f"cannot finish writing the local store '{self.ctx.store.root}': {exc.strerror or exc}",
                    "free space there; the next git mlx command picks up the objects written so far",
                )
        if self._stat_cache is not None:
            self._stat_cache.close()
        self._refresh_index()
        self._claim.drop()
        if self._pool is not None:
            self._pool.shutdown()
        if self._index is not None:
            self._index.close()
