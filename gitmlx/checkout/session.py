"""What one filter invocation knows: its repository, store, fetch selection and the
parts it starts once a request needs them; it wires git's requests to those parts.

Owns: the policy around smudge — skip-smudge, mlx.fetchinclude / mlx.fetchexclude,
mlx.smudgelimit and mlx.directplace, which files git is told to ask for again (the
"delay" capability) — and what happens when an object cannot be had: the file is checked
out as its pointer, one `error:` line names it, and it is recorded (`handoff`) so the
post-checkout / post-merge hook can fail the command and say how to finish (`git mlx
pull`). The parts: `downloads.Downloads` fetches, `placement.Placer` puts the content of
the files this process places itself, `handoff` holds what others finish.

Why not answer `status=error`: with `filter.mlx.required`, git dies at the first failed
smudge ("fatal: <path>: smudge filter mlx failed"), leaving a half-switched work tree and
every later file unwritten. A pointer is what git itself holds for the file, so the work
tree stays consistent and `git status` clean.
Shared by the long-running filter and the one-shot `clean` / `smudge` commands.
Must not: print (warnings go to the callbacks it is given), or import what a request does
not need: a `git add` of one small file runs clean only, so the downloads, the placement
code, the hand-off, the progress counts, the remotes, the thread pool and sqlite load on
first use.
"""

from __future__ import annotations

from collections.abc import Callable

from gitmlx.checkout import filters
from gitmlx.checkout.indexpointers import IndexPointers
from gitmlx.checkout.statcache import StatCache
from gitmlx.config import split_patterns
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError
from gitmlx.format import patterns
from gitmlx.format import pointer as pointers
from gitmlx.format.pointer import MAX_POINTER_SIZE, Pointer
from gitmlx.git.filter_protocol import DELAYED

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: every filter start would import typing
if TYPE_CHECKING:
    from gitmlx.checkout.downloads import Download, Downloads
    from gitmlx.checkout.gitwrite import GitWriteCheck
    from gitmlx.checkout.placement import Placer
    from gitmlx.checkout.progress import CheckoutProgress, Display
    from gitmlx.store.pointer_record import PointerRecordWriter

    Body = Callable[[filters.Sink], None]


class DelayedFile:
    """A file git was told to ask for again, once `list_available` names it.

    A plain class, not a dataclass: this module loads for every clean, and making a
    dataclass costs the filter's start more than the class is worth.
    """

    __slots__ = ("pointer", "download", "placed_text")

    def __init__(self, pointer: Pointer, download: Download, placed_text: bytes | None = None) -> None:
        self.pointer = pointer
        #: Its object's download (done at once when the object is local).
        self.download = download
        #: The pointer text git gets for a file this process places itself: the one file
        #: a checkout delays only so that git ends it with list_available_blobs.
        self.placed_text = placed_text

    def ready(self) -> bool:
        return self.placed_text is not None or self.download.done()


class DelayedFiles:
    """The files git was told to ask for again (the "delay" capability), until it has."""

    def __init__(self) -> None:
        #: Not named to git yet (most wait for their download).
        self.waiting: dict[str, DelayedFile] = {}
        #: Named to git by list_available_blobs, until git asks for them.
        self.listed: dict[str, DelayedFile] = {}
        #: Whether this checkout has delayed a file so that git ends it with list_available_blobs.
        self.barrier = False

    def wait_ready(self) -> list[str]:
        """Block until one waiting file is ready; list every ready one."""
        if not any(delayed.ready() for delayed in self.waiting.values()):
            from gitmlx.checkout.downloads import wait_for_any

            wait_for_any(delayed.download for delayed in self.waiting.values())
        ready = [path for path, delayed in self.waiting.items() if delayed.ready()]
        for path in ready:
            self.listed[path] = self.waiting.pop(path)
        return ready


class SizeLimits:
    """mlx.smudgelimit and mlx.directplace: the objects git is not given whole."""

    __slots__ = ("memory", "direct")

    def __init__(self, memory: int, direct: int) -> None:
        self.memory = memory
        self.direct = direct

    def defers(self, pointer: Pointer) -> bool:
        """Whether smudge answers with the pointer, outside a checkout, and leaves the file
        to the post-checkout / post-merge hook (or to this process's exit, for commands
        that run none): above mlx.smudgelimit, git would hold the whole file in memory."""
        return 0 < self.memory < pointer.size

    def places(self, pointer: Pointer) -> bool:
        """Whether, in a checkout, git gets the pointer and this process puts the content in
        place (`placement` says why): from mlx.directplace up (default: every file), and
        always above mlx.smudgelimit."""
        return 0 < self.direct <= pointer.size or 0 < self.memory < pointer.size


class FilterSession:
    """One filter process's (or one-shot filter's) answers to git.

    Over 250 lines on purpose: it is the one place where git's requests meet the parts
    (downloads, placer, hand-off, write check, delayed files), each method a few lines of
    wiring in the order git sends its messages; split further, one request's path would
    run through several classes that each know part of the protocol.
    """

    def __init__(
        self,
        skip_smudge: bool = False,
        warn: Callable[[str], None] | None = None,
        error: Callable[[str, str | None], None] | None = None,
        display: Display | None = None,
    ) -> None:
        self.ctx = RepoContext(at_top=True)
        #: What a checkout restored so far, when there is a display to show it on (made at
        #: the first smudge: a clean-only process never counts).
        self._progress: CheckoutProgress | None = None
        self._display = display
        self._skip = skip_smudge
        self._skip_config: bool | None = None
        self._warn = warn
        self._error = error
        self._selection: tuple[list[str], list[str]] | None = None
        self._index = IndexPointers(self.ctx)
        self._limits: SizeLimits | None = None
        self._stat_cache = StatCache(self.ctx.paths.git_dir, warn)
        self._downloads: Downloads | None = None
        self._placer: Placer | None = None
        #: Objects this process hashed while downloading them, asked when a body runs
        #: (prepare_smudge's fetch may start the downloads after the body is made).
        self._hashed = _Lookup(lambda oid: self._downloads is not None and oid in self._downloads.verified)
        #: Whether this process left a file for placement outside git (mlx.smudgelimit).
        self.deferred = False
        #: The files git writes itself in a checkout, checked when git moves on.
        self._git_writes: GitWriteCheck | None = None
        self._delayed = DelayedFiles()
        self._pointer_record: PointerRecordWriter | None = None  # made at the first clean that stores

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
        self._scheduler().fetch(pointer)

    def _scheduler(self) -> Downloads:
        if self._downloads is None:
            from gitmlx.checkout.downloads import Downloads  # only a smudge that may fetch pays for it

            self._downloads = Downloads(self.ctx, self.wanted, self._warn, self._progress)
        return self._downloads

    def _placement(self) -> Placer:
        if self._placer is None:
            from gitmlx.checkout.placement import Placer  # only a checkout that places pays for it

            downloads = self._scheduler()
            self._placer = Placer(self.ctx, self._stat_cache, downloads.fetch, downloads.verified, self._unavailable)
        return self._placer

    # -- clean ---------------------------------------------------------------------------------

    def clean(self, source: filters.Source, path: str = "") -> bytes:
        self._git_moved_on()
        if patterns.never_tracked(path):
            # git holds these files in memory itself (attr.c caps .gitattributes at 100 MiB).
            return source.read()
        work_tree = self.ctx.paths.work_tree
        known = self._stat_cache.untouched(work_tree, path) if path and work_tree is not None else None
        if known is not None:
            return filters.clean_unchanged(source, known, path)
        return filters.clean(source, self.ctx.store, self._index.pointer(path), path, self._warn, self._recorded)

    def _recorded(self, text: bytes, pointer: Pointer) -> None:
        """Note the blob git makes of `text`, so a push finds its pointer without asking git."""
        if self._pointer_record is None:
            from gitmlx.osutil import oscalls
            from gitmlx.store.pointer_record import PointerRecordWriter

            # The first object this filter stored: an add of many files, each read into a
            # buffer of its own. Not at start-up: ctypes costs a `git status` ~8 ms.
            oscalls.keep_freed_memory()
            self._pointer_record = PointerRecordWriter(self.ctx.store.root, self._index.object_format())
        self._pointer_record.add(text, pointer)

    # -- smudge --------------------------------------------------------------------------------

    def smudge(self, source: filters.Source, path: str, can_delay: bool = False) -> Body:
        """The body that writes `path`'s content, or DELAYED (only with `can_delay`)."""
        if self._display is not None and self._progress is None:
            from gitmlx.checkout.progress import CheckoutProgress

            self._progress = CheckoutProgress(self._display)
        self._git_moved_on()
        if path in self._delayed.listed:
            return self._finish_delayed(path)  # git's second request, with empty content
        if self._placer is not None:
            self._placer.before_rewrite(path)
        restore = not self.skip_smudge and self.wanted(path)
        fetch = self.fetch if restore else None
        if restore:
            head = filters.read_head(source)
            pointer = pointers.parse(head) if len(head) < MAX_POINTER_SIZE else None
            if pointer is not None:
                if can_delay and self._sizes().places(pointer):
                    return self._place_later(path, pointer, head)
                if can_delay and self._progress is not None:
                    self._progress.want(pointer, self.ctx.store.has(pointer.oid))
                if can_delay and not self.ctx.store.has(pointer.oid):
                    return self._delay(path, pointer)
                if self._sizes().defers(pointer):
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
            self._hashed,
        )
        return self._watched(path, pointer, body) if can_delay and pointer is not None else body

    def _unavailable(self, path: str, exc: MlxError) -> None:
        if self._error is not None:
            self._error(f"cannot restore '{path}', left as a pointer: {exc.message}", exc.hint)
        from gitmlx.checkout import handoff

        handoff.record_path(self.ctx.paths.git_dir, handoff.UNRESTORED_FILE, path)

    def _sizes(self) -> SizeLimits:
        if self._limits is None:
            # git's sequencer keeps its index in memory from one step to the next, with the
            # stat data of the file git wrote: a file placed after that looks modified to
            # the next pick ("Your local changes ... would be overwritten"). There, git
            # writes the content itself, as with mlx.directplace=0.
            from gitmlx.checkout.gitparent import parent_is_sequencer

            direct = 0 if parent_is_sequencer() else self.ctx.config.size("mlx.directplace")
            self._limits = SizeLimits(self.ctx.config.size("mlx.smudgelimit"), direct)
        return self._limits

    # -- objects above mlx.smudgelimit outside a checkout: left to the post-checkout hook ----

    def _defer(self, path: str, pointer: Pointer, head: bytes) -> Body:
        """Check out the pointer now; the hook streams the content into place afterwards."""
        if not self.ctx.store.has(pointer.oid):
            try:
                self.fetch(pointer)
            except MlxError as exc:
                self._unavailable(path, exc)
                return lambda sink: sink.write(head)
        from gitmlx.checkout import handoff

        git_dir = self.ctx.paths.git_dir
        if pointer.oid in self._hashed:
            handoff.vouch(git_dir, pointer.oid, self.ctx.store.path(pointer.oid))
        handoff.record_path(git_dir, handoff.DEFERRED_FILE, path)
        self.deferred = True
        return lambda sink: sink.write(head)

    # -- files gitmlx places: git writes the pointer, this process the content -------------

    def _place_later(self, path: str, pointer: Pointer, text: bytes) -> Body:
        download = self._scheduler().for_placement(path, pointer)
        if self._progress is not None:
            # Its download tells whether the object is in the store: asking the store
            # again cost a lookup per file.
            self._progress.want(pointer, download.done() and download.exception() is None)
        placer = self._placement()
        placer.claim(path)
        if not self._delayed.barrier:
            # One file delayed per checkout: git then ends the checkout with
            # list_available_blobs, which is where this process knows git has written
            # every pointer and can finish the placements before git goes on.
            self._delayed.barrier = True
            self._delayed.waiting[path] = DelayedFile(pointer, download, placed_text=text)
            return DELAYED
        return placer.answer(path, pointer, text, download)

    def _git_moved_on(self) -> None:
        """git sent another message: it has written every file it took from us before."""
        if self._git_writes is not None:
            self._git_writes.check()
        if self._placer is not None:
            self._placer.git_moved_on()

    def idle(self) -> None:
        """Between git's messages: place what is ready (`Placer.place_ready`)."""
        if self._placer is not None:
            self._placer.place_ready()

    def _finish_placements(self) -> None:
        """Place every file left (their downloads start first: the placements wait for them)."""
        if self._downloads is not None:
            self._downloads.start_queued()
        if self._placer is not None:
            self._placer.finish()
            self._placer.remove_spare()

    def _finish_checkout(self) -> None:
        self._finish_placements()
        if self._placer is not None:
            # Dropped now, not when git closes this process: its post-checkout hook then
            # has nothing to do and is not started. Killed before the index refresh, the
            # placed files are found by their stat-cache records (the refresh is only a
            # speed-up).
            self._placer.drop_claim()
        self._delayed.barrier = False
        if self._downloads is not None and self._downloads.started:
            self._downloads.finish_pack()
        if self._progress is not None:
            self._progress.finish()
        if self._placer is not None:
            self._placer.drop_store_copies()  # mlx.thin only

    # -- the "delay" capability: download in parallel while git goes on ---------------------

    def _delay(self, path: str, pointer: Pointer) -> Body:
        """Tell git to ask for `path` again once its object is in, unless a fetch-ahead
        already has it on its way (then wait for it now)."""
        downloads = self._scheduler()
        ahead = downloads.ahead(path, pointer)
        if ahead is not None:
            return self._deliver(path, pointer, ahead)
        # An unusable remote fails the download: the file is left as its pointer and
        # named, and the rest of the checkout goes on.
        self._delayed.waiting[path] = DelayedFile(pointer, downloads.delayed(pointer))
        return DELAYED

    def list_available(self) -> list[str]:
        """Block until some delayed download ends; those paths (git then asks for them).

        The empty list ends git's checkout: before it, every file this process places
        is in place or reported, so git's index write, its hooks and the command's exit
        status come after the work tree is complete."""
        self._git_moved_on()
        if not self._delayed.waiting:
            self._finish_checkout()
            return []
        downloads = self._scheduler()
        downloads.start_queued()
        ready = self._delayed.wait_ready()
        if not self._delayed.waiting:
            downloads.finish_pack()
        return ready

    def _finish_delayed(self, path: str) -> Body:
        delayed = self._delayed.listed.pop(path)
        if delayed.placed_text is not None:
            return self._placement().answer(path, delayed.pointer, delayed.placed_text, delayed.download)
        return self._deliver(path, delayed.pointer, delayed.download)

    def _deliver(self, path: str, pointer: Pointer, download: Download) -> Body:
        """The body for a downloaded object (waiting for its download to end): its bytes,
        or its pointer when the download failed."""
        exc = download.exception()
        if exc is not None:
            if not isinstance(exc, MlxError):
                raise exc
            self._unavailable(path, exc)
            return lambda sink: sink.write(pointer.encode())
        return self._watched(
            path,
            pointer,
            lambda sink: filters.stream_object(
                self.ctx.store, pointer, sink, path, verify=pointer.oid not in self._hashed
            ),
        )

    def _watched(self, path: str, pointer: Pointer, body: Body) -> Body:
        """`body`, checked once git has written it (`gitwrite`): checkouts only."""
        if self._git_writes is None:
            from gitmlx.checkout.gitwrite import GitWriteCheck

            self._git_writes = GitWriteCheck(self.ctx, self._error)
        return self._git_writes.watch(path, pointer, body)

    def close(self) -> None:
        self._git_moved_on()  # git has written the last file, or has gone away
        self._finish_placements()
        try:
            self.ctx.store.sync()
        except OSError as exc:  # a full disk: the objects stay in the store's tmp/, not lost
            if self._error is not None:
                self._error(
                    f"cannot finish writing the local store '{self.ctx.store.root}': {exc.strerror or exc}",
                    "free space there; the next git mlx command picks up the objects written so far",
                )
        self._stat_cache.close()
        if self._pointer_record is not None:
            self._pointer_record.close()
        if self._progress is not None:
            self._progress.finish()
        if self._placer is not None:
            self._placer.drop_store_copies()  # mlx.thin only
            self._placer.refresh_index()
            self._placer.drop_claim()
        if self._downloads is not None:
            self._downloads.close()


class _Lookup:
    """A container whose membership test is a function."""

    def __init__(self, test: Callable[[object], bool]) -> None:
        self._test = test

    def __contains__(self, item: object) -> bool:
        return self._test(item)
