"""The filter's own placements: in a checkout git writes each file's pointer, and this
process then puts the content in its place.

Why: git writes a filter's output straight under the file's final name (entry.c), so a
git killed or out of space mid-write leaves a short file there, wrong bytes the next
`git add -A` would commit; a pointer is one small write. git would also hold the whole
output in memory before writing it, while this process copies with the kernel while git
writes the next pointer (docs/design.md, "Checkout").

Owns: the claim on the files this process places (`handoff.Claim`), each placement's
stage (`Stage`, `Placement`; a placed file becomes a compact `PlacedFile`), the spare
file, the folders already checked, recording the placed files in the stat cache, and
giving git's index their stat data at the end.
Must not: fetch on its own (it waits for the downloads it is given, and refetches a
corrupt local copy through `fetch`), talk to git, or print.
"""

from __future__ import annotations

import enum
import itertools
import os
import struct
from collections.abc import Callable, Container

from gitmlx.checkout import filters, worktree
from gitmlx.checkout.handoff import Claim
from gitmlx.checkout.spare import SpareFile
from gitmlx.checkout.statcache import StatCache
from gitmlx.context import RepoContext
from gitmlx.errors import IntegrityError, MlxError
from gitmlx.format.pointer import LFS_VERSION, MLX_VERSION, Pointer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from gitmlx.checkout.downloads import Download

#: Told about a file that stays a pointer, and why.
Unavailable = Callable[[str, MlxError], None]

#: How many of the oldest waiting files `place_ready` looks at. git writes in path order
#: and downloads run in that order; looking at every waiting file at each request would
#: cost quadratic time when downloads lag behind (the end of the checkout places the rest).
_LOOK_AHEAD = 16


class Stage(enum.Enum):
    #: git has the pointer text as its answer but may not have written it yet.
    ANSWERED = "answered"
    #: git has written the pointer (it sent another message since): the content waits
    #: for its object.
    WRITTEN = "written"


#: A placed file's stat data, then its pointer: raw oid, size, whether a Git LFS pointer.
_PLACED = struct.Struct("=QQQqqIII32sQ?")
#: Each stat field of _PLACED alone, with its offset: the index refresh reads ten of them
#: per file, and unpacking the whole record for each cost more than the rest of it.
_FIELDS = [
    (struct.Struct("=" + code), struct.calcsize("=" + _PLACED.format[1 : 1 + i]))
    for i, code in enumerate(_PLACED.format[1:9])
]


def _stat_field(i: int, scale: float = 0) -> property:
    """The property reading stat field `i` of a PlacedFile (in seconds with `scale`): one
    unpack, no further call (the stat cache and the index refresh read 15 per file)."""
    unpack_from, offset = _FIELDS[i][0].unpack_from, _FIELDS[i][1]
    if scale:
        return property(lambda self: unpack_from(self._packed, offset)[0] / scale)
    return property(lambda self: unpack_from(self._packed, offset)[0])


class PlacedFile:
    """A placed file's pointer and the stat data the stat cache and git's index keep of
    it, packed into one bytes object.

    Every placed file's is kept until git closes this process (the index refresh): an
    os.stat_result is ~600 bytes with its number objects, and a Pointer with its oid ~180;
    packed, the two take ~170. It answers the os.stat_result attributes those two read."""

    __slots__ = ("_packed",)

    def __init__(self, pointer: Pointer, st: os.stat_result) -> None:
        fields = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_uid, st.st_gid)
        raw = bytes.fromhex(pointer.oid)
        self._packed = _PLACED.pack(*fields, st.st_mode, raw, pointer.size, pointer.is_lfs)

    @property
    def pointer(self) -> Pointer:
        fields = _PLACED.unpack(self._packed)
        return Pointer(fields[8].hex(), fields[9], LFS_VERSION if fields[10] else MLX_VERSION)

    st_dev = _stat_field(0)
    st_ino = _stat_field(1)
    st_size = _stat_field(2)
    st_mtime_ns = _stat_field(3)
    st_ctime_ns = _stat_field(4)
    st_uid = _stat_field(5)
    st_gid = _stat_field(6)
    st_mode = _stat_field(7)
    st_mtime = _stat_field(3, 1e9)
    st_ctime = _stat_field(4, 1e9)


class Placement:
    """One file this process puts in place over the pointer `text` git writes.

    A plain class whose `stage` moves on in place: a frozen dataclass copied at each
    stage cost a copy per file of a checkout."""

    __slots__ = ("path", "pointer", "text", "download", "stage")

    def __init__(self, path: str, pointer: Pointer, text: bytes, download: Download) -> None:
        self.path = path
        self.pointer = pointer
        self.text = text
        #: Done when the object is in the store, or failed with why it is not.
        self.download = download
        self.stage = Stage.ANSWERED


class Placer:
    def __init__(
        self,
        ctx: RepoContext,
        stat_cache: StatCache,
        fetch: filters.Fetcher,
        verified: Container[str],
        unavailable: Unavailable,
    ) -> None:
        self._ctx = ctx
        self._stat_cache = stat_cache
        self._fetch = fetch
        #: Objects hashed by this process's downloads: copied by the kernel, no second hash.
        self._verified = verified
        self._unavailable = unavailable
        self._claim = Claim(ctx.paths.git_dir)
        #: ANSWERED and WRITTEN placements by path, oldest first.
        self._waiting: dict[str, Placement] = {}
        #: Placed files not yet in the stat cache.
        self._placed: list[tuple[str, PlacedFile]] = []
        #: Placed files in the stat cache, by path, for git's index at the end.
        self._to_refresh: dict[str, PlacedFile] = {}
        #: Work-tree folders found to be inside the work tree (`place_over_pointer`).
        self._checked_dirs: set[str] = set()
        #: The file each placement fills and swaps in, once needed.
        self._spare: SpareFile | None = None
        #: mlx.thin: objects this process downloaded move into the work tree, and the
        #: store copies of those it placed go at the end (`drop_store_copies`).
        self._thin = ctx.thin
        self._placed_downloads: set[str] = set()

    def claim(self, path: str) -> None:
        """Claim `path` before git writes its pointer (see `handoff.Claim`)."""
        self._claim.add(path)

    def answer(self, path: str, pointer: Pointer, text: bytes, download: Download) -> Callable[[filters.Sink], None]:
        """The body that gives git the pointer `text`; the content follows once git has
        written it and `download` is done."""

        def run(sink: filters.Sink) -> None:
            sink.write(text)
            self._waiting.pop(path, None)  # answered ones stay last (`git_moved_on`)
            self._waiting[path] = Placement(path, pointer, text, download)

        return run

    def git_moved_on(self) -> None:
        """git sent another message: it has written every pointer it took from us before."""
        for placement in reversed(self._waiting.values()):
            if placement.stage is not Stage.ANSWERED:
                break  # every message moves all answered ones on: the rest are older
            placement.stage = Stage.WRITTEN

    def place_ready(self) -> None:
        """Place the oldest written files whose objects are in, while git writes the next.

        Called after each answer, on the thread that talks to git: placing on threads of
        their own made every request of a large clone slower than the placing saved (the
        interpreter's lock changing hands far more often), and git has work to do with
        each answer anyway.
        """
        oldest = itertools.islice(self._waiting.values(), _LOOK_AHEAD)
        ready = [p for p in oldest if p.stage is Stage.WRITTEN and p.download.done()]
        for placement in ready:
            self._place(self._waiting.pop(placement.path))

    def before_rewrite(self, path: str) -> None:
        """git is about to write `path` again (one command checking out twice, as stash
        does): its previous version must be placed before, not over, that write."""
        placement = self._waiting.get(path)
        if placement is not None and placement.stage is Stage.WRITTEN:
            self._place(self._waiting.pop(path))

    def finish(self) -> None:
        """Place every file left and record what was placed in the stat cache (git's index
        write, just after, runs clean on racily clean files: it must find them). The
        downloads they wait for must have been started."""
        while self._waiting:
            self._place(self._waiting.pop(next(iter(self._waiting))))
        done, self._placed = self._placed, []
        if not done:
            return
        self._to_refresh.update(done)
        with self._stat_cache.batch():
            # The text git wrote: pointers parse only in their one canonical encoding.
            self._stat_cache.record_many((path, placed, placed.pointer.encode()) for path, placed in done)  # type: ignore[misc]

    def remove_spare(self) -> None:
        if self._spare is not None:
            self._spare.remove()

    def drop_claim(self) -> None:
        """Every claimed file is placed or reported: nothing is left for another process."""
        self._claim.drop()

    def refresh_index(self) -> None:
        """Give git's index the placed files' stat data (it holds the pointers' since git
        wrote them), so `git status` does not read them. git has written its index and
        let go of its lock by the time it closes this process."""
        if not self._to_refresh or self._ctx.paths.work_tree is None:
            return
        placed, self._to_refresh = self._to_refresh, {}
        try:
            worktree.refresh_index(self._ctx.paths.work_tree, placed)
        except (MlxError, OSError):
            pass  # the index is locked by another command, or gone: the stat cache answers

    def _place(self, placement: Placement) -> None:
        path, pointer = placement.path, placement.pointer
        exc = placement.download.exception()  # waits for the download
        if exc is not None:
            if not isinstance(exc, MlxError):
                exc = MlxError(f"internal error ({type(exc).__name__}: {exc})", "run 'git mlx pull'")
            self._unavailable(path, exc)
            return
        try:
            if self._thin and not self._ctx.store.has(pointer.oid):
                self._fetch(pointer)  # moved into another file of this checkout: again, from its chunks
            try:
                st = self._place_over_pointer(placement)
            except IntegrityError:
                # The local copy does not hash to its oid: out of the way with it, and
                # place a good copy from the remote instead.
                self._ctx.store.quarantine(pointer.oid)
                try:
                    self._fetch(pointer)
                except MlxError as exc:
                    raise MlxError(
                        f"the local copy of object {pointer.short_oid} was corrupt (moved to the store's bad/), "
                        f"and fetching a good one failed: {exc.message}",
                        exc.hint,
                    ) from exc
                st = self._place_over_pointer(placement)
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
                if self._thin:
                    st = self._placed_thin(placement, st)
                self._placed.append((path, PlacedFile(pointer, st)))

    def _placed_thin(self, placement: Placement, st: os.stat_result) -> os.stat_result:
        """mlx.thin: remember the placed file as a chunk source for its next version, and
        the store copy of a download for `drop_store_copies`; the file's stat data for
        the index (the link changed its ctime)."""
        oid = placement.pointer.oid
        links = self._ctx.store.worktree_links
        work_tree = self._ctx.paths.work_tree
        if links is not None and work_tree is not None:
            st = links.add(oid, os.path.join(work_tree, placement.path), st)
        if oid in self._verified:
            self._placed_downloads.add(oid)
        return st

    def drop_store_copies(self) -> None:
        """mlx.thin: the work-tree files are the only local copies of the objects this
        process downloaded and placed (the remote holds them), and the links to work-tree
        files git has replaced go (`worktreelinks`)."""
        if not self._thin:
            return
        oids, self._placed_downloads = self._placed_downloads, set()
        try:
            if oids:
                self._ctx.store.discard(oids)
            links = self._ctx.store.worktree_links
            if links is not None:
                links.sweep()
        except OSError:
            pass  # a full disk while rewriting a pack: the next thin checkout or prune drops them

    def _place_over_pointer(self, placement: Placement) -> os.stat_result | None:
        work_tree = self._ctx.paths.work_tree
        assert work_tree is not None  # git offers can-delay only when writing a work tree
        if self._spare is None:
            self._spare = SpareFile(self._ctx.paths.git_dir)
        return worktree.place_over_pointer(
            self._ctx.store,
            work_tree,
            placement.path,
            placement.pointer,
            placement.text,
            placement.pointer.oid in self._verified,
            self._checked_dirs,
            self._spare,
            take=self._thin and placement.pointer.oid in self._verified,
        )
