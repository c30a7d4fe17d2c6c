"""Steps several commands share: choose files, move them with progress, place them.

Owns: the composition of scan → transfer → worktree with a progress display, so
`fetch`, `pull`, `push`, `pre-push`, `checkout` and `demo` stay short and agree.
Must not: parse command lines or decide exit statuses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Container, Sequence
from dataclasses import dataclass
from functools import cached_property

from gitmlx import ui
from gitmlx.config import DEFAULT_GRACE_DAYS, MAX_DAYS, parse_days, split_patterns
from gitmlx.context import RepoContext
from gitmlx.errors import ConfigError, MlxError, UsageError
from gitmlx.format import patterns
from gitmlx.format.pointer import Pointer
from gitmlx.format.sizes import human_size
from gitmlx.git import scan
from gitmlx.git.packed_files import PackedFiles
from gitmlx.git.scan import TrackedFile
from gitmlx.remotes.base import Remote
from gitmlx.store import pointer_record
from gitmlx.store.remote_record import RemoteRecord
from gitmlx.transfer import confirm
from gitmlx.transfer import upload as uploads
from gitmlx.transfer.common import TransferResult, unique
from gitmlx.transfer.remote_check import PackSizes

TYPE_CHECKING = False  # the pre-push hook loads this module: what only checkouts use loads on use
if TYPE_CHECKING:
    from gitmlx.checkout import worktree


def fetch_selection(ctx: RepoContext, include: Sequence[str], exclude: Sequence[str]) -> patterns.Selection:
    """-I/-X from the command line and mlx.fetchinclude / mlx.fetchexclude, each with the
    words that name it in messages (a configured list names the config scope it came from)."""

    def configured(key: str) -> patterns.PatternList:
        found = ctx.config.get(key)
        if found is None or not split_patterns(found.value):
            return patterns.NONE
        return patterns.PatternList(tuple(split_patterns(found.value)), f"{key}={found.value} ({found.source})")

    def given(flag: str, values: Sequence[str]) -> patterns.PatternList:
        return patterns.PatternList(tuple(values), f"{flag} {' '.join(repr(v) for v in values)}")

    return patterns.Selection(
        given("-I", include), given("-X", exclude), configured("mlx.fetchinclude"), configured("mlx.fetchexclude")
    )


def files_at(
    ctx: RepoContext,
    refs: Sequence[str] = ("HEAD",),
    all_history: bool = False,
    selection: patterns.Selection | None = None,
    quiet: bool = False,
) -> list[TrackedFile]:
    """Tracked files in the trees of `refs` (or every commit with `all_history`); with a
    `selection`, those it wants, saying what it skipped and why (see `choose`)."""
    if all_history:
        found = scan.pointers_in_range(ctx.top, ["--all"], tracked_at=["HEAD"])
    else:
        found = [f for ref in refs for f in scan.pointers_in_tree(ctx.top, ref)]
    if selection is None:
        return found
    where = "the history" if all_history else " and ".join(refs)
    return choose(found, selection, where, quiet)


def require_named(selection: patterns.Selection, found: Sequence[TrackedFile], where: str, label: str) -> None:
    """Fail, as git does for a pathspec that matches nothing, when a pattern the command
    line gave (selection.cli_include) names none of `found`."""
    unmatched = selection.unmatched([f.path for f in found])
    if unmatched:
        raise MlxError(
            f"{label}{', '.join(repr(p) for p in unmatched)} matches no tracked file in {where}",
            "patterns are read like .gitignore lines, from the top of the repository; "
            "'git mlx ls-files' lists the tracked files",
        )


def choose(found: Sequence[TrackedFile], selection: patterns.Selection, where: str, quiet: bool) -> list[TrackedFile]:
    """The files `selection` wants. A -I pattern naming no tracked file is an error, as a
    pathspec naming nothing is in git (nothing is fetched); every file skipped for another
    reason than not being named by -I is counted in one line per reason, and so is every
    file -I fetches although a configured exclude names it."""
    require_named(selection, found, where, "-I ")
    chosen, counts = [], Counter()
    for f in found:
        choice = selection.choose(f.path)
        if choice.wanted:
            chosen.append(f)
        if choice.why and choice.why is not selection.cli_include:
            counts[(choice.wanted, choice.why.origin)] += 1
    if not quiet:
        for (wanted, origin), n in counts.items():
            if wanted:
                ui.note(f"{n} file(s) excluded by {origin} fetched anyway: -I names them")
            elif selection.cli_include:
                ui.note(f"{n} file(s) matched -I but are excluded by {origin}")
            else:
                skipped = "not in" if origin.startswith("mlx.fetchinclude") else "excluded by"
                ui.note(f"{n} file(s) skipped: {skipped} {origin}")
        if not found:
            ui.note(f"no tracked files in {where}")
    return chosen


def pointer_files(ctx: RepoContext, files: Sequence[TrackedFile]) -> list[TrackedFile]:
    """The work-tree files among `files` that still hold their pointer."""
    from gitmlx.checkout import worktree

    work_tree = ctx.paths.work_tree
    return [f for f in files if work_tree is not None and worktree.holds_pointer(work_tree, f)]


def download(
    ctx: RepoContext, remote: Remote, files: Sequence[TrackedFile], quiet: bool = False, summary: bool = True
) -> TransferResult:
    """Fetch what the store lacks; `summary`: end with a line saying what moved (stderr)."""
    from gitmlx.transfer import download as downloads

    todo = [f.pointer for f in files if not ctx.store.has(f.pointer.oid)]
    with ui.progress(sum(p.size for p in todo), len(todo), "fetch", quiet) as bar:
        result = downloads.download(
            ctx.store,
            remote,
            todo,
            ctx.config.integer("mlx.concurrency"),
            bar.bytes_done,
            bar.file_done,
            notice=ui.warn,
        )
        if todo and summary:
            bar.close_summary = (
                f"fetched {len(result.moved)} of {len(todo)} objects ({human_size(result.bytes_moved)}) "
                f"from '{remote.display_url}': {human_size(result.wire_bytes)} transferred"
            )
    report_failures(result, files, "fetch", remote)
    return result


def range_uploads(ctx: RepoContext, found: scan.RangePointers) -> list[TrackedFile]:
    """What a push of a range uploads: its artifacts, and the objects the store holds of
    the pointer text elsewhere. Attributes are judged at the pushed commits only, so a
    file tracked by an older .gitattributes may sit among the rest: its object goes too
    when it can, and pointer text naming an object nobody has refuses nothing."""
    return found.artifacts + [f for f in found.elsewhere if ctx.store.has(f.pointer.oid)]


def grace_days(ctx: RepoContext, option: float | None = None) -> float:
    """`--grace`, else `mlx.gcgrace` from git config (never from a committed .mlxconfig:
    a cloned repository must not shorten how long its remote's garbage is kept), else 7."""
    if option is not None:
        if not 0 <= option <= MAX_DAYS:  # also refuses nan, which click's float type takes
            raise UsageError(f"--grace must be 0 to {MAX_DAYS:.0f} days")
        return option
    raw = ctx.config.git("mlx.gcgrace")
    if raw is None:
        return DEFAULT_GRACE_DAYS
    days = parse_days(raw)
    if days is None:
        raise ConfigError(
            f"invalid mlx.gcgrace {raw!r} (from git config)", f"set it to a number of days, 0 to {MAX_DAYS:.0f}"
        )
    return days


def remote_record(ctx: RepoContext) -> RemoteRecord:
    """What this store knows to be on each artifact remote (docs/local-store.md)."""
    return RemoteRecord.beside(ctx.store.root, ui.warn)


@dataclass(frozen=True)
class PushNeeds:
    """What a push must leave on the artifact remote."""

    files: Sequence[TrackedFile]
    #: How many of `files`, from the first, are in the pushed tips' trees.
    tip_files: int = 0
    #: Files of the pushed range with `filter=mlx` committed as content, not as pointers
    #: (path, size): only when `push_needs` was asked for them.
    unfiltered: Sequence[tuple[str, int]] = ()

    @cached_property
    def at_tips(self) -> frozenset[str]:
        """Objects the pushed tips' trees need: a push that cannot place one there is
        refused. Made when asked (a refusal, Git LFS objects): a set of 100,000 oids
        costs 5 MiB that the upload would otherwise hold beside everything else."""
        pointers = self.files.pointers if isinstance(self.files, PackedFiles) else [f.pointer for f in self.files]
        return frozenset(p.oid for p in pointers[: self.tip_files])


def push_needs(ctx: RepoContext, tips: Sequence[str], exclude: Sequence[str], *, unfiltered: bool = False) -> PushNeeds:
    """Every artifact in the tree of each of `tips`, and what the commits `tips` reach
    and `exclude` does not bring (`range_uploads`): a clone of any tip, or a checkout of
    any pushed commit, then finds its objects on the remote, whatever the remote held
    before (a new or emptied artifact remote, history from before `migrate from-lfs`).
    Pointer blobs the clean filter recorded (store/pointer_record.py) are not read from git.
    `unfiltered`: also list the range's files committed without the filter (the same
    scan: scan.range_pointers)."""
    trees = scan.trees_of(ctx.top, tips)
    blobs: set[str] = set()  # the tips' pointer blobs: the range scan need not read them again
    files = PackedFiles()
    recorded = pointer_record.reader(ctx.store.root)
    for tree in trees:
        files.extend(scan.iter_pointers_in_tree(ctx.top, tree, blobs=blobs, recorded=recorded))
    in_trees = len(files)
    found = (
        scan.range_pointers(ctx.top, tips, exclude, trees, blobs, unfiltered=unfiltered, recorded=recorded)
        if tips
        else scan.RangePointers([], [])
    )
    del blobs
    files.extend(range_uploads(ctx, found))
    return PushNeeds(files, in_trees, found.unfiltered)


def push(
    ctx: RepoContext, remote: Remote, needs: PushNeeds, *, trust_record: bool, quiet: bool = False, summary: bool = True
) -> TransferResult:
    """Upload what `needs` lists and the remote lacks; returns the result, whose `failed`
    holds only what refuses the push.

    `trust_record`: skip asking about objects the remote record vouches for (the pre-push
    hook: O(changed) requests); otherwise every object is checked (`git mlx push`, which
    is how a damaged remote is repaired). Objects the store lacks are taken from Git LFS's
    folder when it has them (`git lfs fetch --all` after the migration). A Git LFS
    pointer only in older commits of the range that nobody has is named in a warning and
    refuses nothing: the tips do not need it, and its Git LFS server may still hold it.
    """
    for f in needs.files:
        if not ctx.store.has(f.pointer.oid):
            from gitmlx.migrate import from_lfs

            from_lfs.import_lfs_object(ctx, f.pointer)
    lfs = {f.pointer.oid for f in needs.files if f.pointer.is_lfs}
    old_lfs = lfs - needs.at_tips if lfs else set()
    trust = record_trust_seconds(ctx) if trust_record else None
    record = remote_record(ctx)
    try:
        return upload(ctx, remote, needs.files, quiet, summary, record=record, trust_seconds=trust, tolerate=old_lfs)
    finally:
        record.close()


#: `git mlx status` asks the artifact remote about at most this many objects the remote
#: record does not vouch for (a fresh clone of a large repository must not wait for a GET
#: per file); the others count as pushed unless the git remote lacks their commits.
STATUS_ASK_LIMIT = 2000


@dataclass(frozen=True)
class Unpushed:
    """Artifacts committed whose objects the artifact remote is not known to hold."""

    files: list[TrackedFile]
    #: Why the artifact remote could not be asked (then `files` is what git's refs say).
    unasked: str | None = None
    #: Objects not asked about (past STATUS_ASK_LIMIT); judged by git's refs.
    not_checked: int = 0


def unpushed(ctx: RepoContext, git_remote: str | None) -> Unpushed:
    """The artifacts of HEAD's tree and of the commits `git_remote` lacks whose objects
    are not on the artifact remote: the remote record answers for what it vouches for,
    the remote for the rest (and the record keeps the answer).

    What git's refs say is not enough: after `git push --no-verify` the remote-tracking
    refs have the commits while the artifact remote lacks their objects, and a bare
    clone has no remote-tracking refs at all."""
    excluded = [f"--remotes={git_remote}"] if git_remote else []
    if not scan.trees_of(ctx.top, ["HEAD"]):
        return Unpushed([])
    in_range = scan.pointers_in_range(ctx.top, ["HEAD"], excluded, tracked_at=["HEAD"])
    # The range first: past the limit, those are the likeliest to be missing.
    found = {(f.path, f.pointer.oid): f for f in [*in_range, *scan.pointers_in_tree(ctx.top, "HEAD")]}
    if not found:
        return Unpushed([])
    try:
        remote = ctx.open_remote(git_remote)
        record = remote_record(ctx)
        try:
            seen = confirm.look(
                remote,
                unique(f.pointer for f in found.values()),
                record,
                record_trust_seconds(ctx),
                ctx.config.integer("mlx.concurrency"),
                PackSizes(remote),
                ask_at_most=STATUS_ASK_LIMIT,
            )
        finally:
            record.close()
    except (MlxError, OSError) as exc:
        return Unpushed(in_range, getattr(exc, "message", None) or str(exc))
    present = seen.present()
    by_refs = {f.pointer.oid for f in in_range}
    missing = [f for f in found.values() if f.pointer.oid not in present]
    files = [f for f in missing if f.pointer.oid not in seen.unasked or f.pointer.oid in by_refs]
    return Unpushed(sorted(files, key=lambda f: f.path), not_checked=len(seen.unasked))


def record_trust_seconds(ctx: RepoContext) -> int | None:
    """How long a row of the remote record is trusted: the gc grace period (None, trusting
    nothing, when mlx.gcgrace does not parse: its own command reports that)."""
    try:
        return int(grace_days(ctx) * 86400)
    except MlxError:
        return None


def push_refused(result: TransferResult, needs: PushNeeds, remote: Remote) -> MlxError:
    """The error that refuses a push whose `result` failed (each file was named above)."""
    at_tips = needs.at_tips & result.failed.keys()
    lfs = {f.pointer.oid for f in needs.files if f.pointer.is_lfs} & result.failed.keys()
    what = f"{len(at_tips)} of them needed by the pushed tips" if at_tips else "needed by the pushed commits"
    hint = (
        "restore the missing files locally (e.g. 'git mlx fetch' from where they are) "
        "or fix the remote, then push again"
    )
    if lfs:
        hint = (
            f"{len(lfs)} of them are Git LFS objects: run 'git lfs fetch --all' (the push reads .git/lfs/objects) "
            "or 'git mlx migrate from-lfs --fetch', then push again"
        )
    return MlxError(
        f"push refused: {len(result.failed)} object(s) could not be put on '{remote.display_url}' "
        f"({what}; listed above)",
        hint,
    )


#: Objects handed to one `transfer.upload.upload` at a time. An upload holds ~600 bytes
#: per object until its end (chunk plans, new chunks, manifests waiting for their shard):
#: a push of 100,000 small files held ~60 MiB of it at once. A push of up to this many
#: objects is still one upload, one shard; each further batch costs a few requests.
UPLOAD_BATCH = 20_000


def upload(
    ctx: RepoContext,
    remote: Remote,
    files: Sequence[TrackedFile],
    quiet: bool = False,
    summary: bool = True,
    *,
    record: RemoteRecord | None = None,
    trust_seconds: int | None = None,
    tolerate: Collection[str] = (),
) -> TransferResult:
    """Upload `files`' objects the remote lacks; `summary`: end with a line saying what
    moved (stderr). Failures of objects in `tolerate` are warned about and dropped from
    the result's `failed`; the others are errors."""
    todo = unique(f.pointer for f in files)
    sizes = {p.oid: p.size for p in todo}
    total, count = sum(sizes.values()), len(sizes)
    del sizes
    result = TransferResult()
    with ui.progress(total, count, "push", quiet) as bar:
        for start in range(0, len(todo), UPLOAD_BATCH):
            part = uploads.upload(
                ctx.store,
                remote,
                todo[start : start + UPLOAD_BATCH],
                ctx.config.integer("mlx.concurrency"),
                bar.bytes_done,
                bar.file_done,
                notice=ui.warn,
                record=record,
                trust_seconds=trust_seconds,
            )
            result.moved += part.moved
            result.skipped += part.skipped
            result.failed.update(part.failed)
            result.wire_bytes += part.wire_bytes
            result.checked += part.checked
        if result.moved and summary:
            bar.close_summary = (
                f"uploaded {len(result.moved)} objects to '{remote.display_url}' ({len(result.skipped)} already there; "
                f"{result.checked} asked of the remote)"
            )
    lost = {oid: result.failed.pop(oid) for oid in list(result.failed) if oid in tolerate}
    report_failures(result, files, "push", remote)
    if lost:
        report_old_lfs(lost, files, remote)
    return result


def report_old_lfs(lost: dict[str, tuple[Pointer, str]], files: Sequence[TrackedFile], remote: Remote) -> None:
    """One warning and the list: Git LFS objects of older pushed commits that are neither
    here nor on the remote."""
    paths = {f.pointer.oid: f.path for f in files}
    ui.warn(
        f"{len(lost)} object(s) that older pushed commits name by Git LFS pointers are neither in this clone "
        f"nor on '{remote.display_url}', so checking out those commits will not restore them:"
    )
    for oid, (pointer, why) in sorted(lost.items(), key=lambda item: paths.get(item[0], "")):
        ui.note(f"\t'{paths.get(oid, '?')}' ({pointer.short_oid}, {human_size(pointer.size)}): {why}")
    ui.note("hint: run 'git lfs fetch --all' while the Git LFS server has them, then 'git mlx push --all'")


def transfer_json(result: TransferResult, files: Sequence[TrackedFile], remote: Remote) -> dict[str, object]:
    """A transfer's summary as `--json` shows it (docs/json-output.md, "Transfers")."""
    by_oid = _paths_by_oid(files)
    return {
        "remote": remote.display_url,
        "objects": len(by_oid),
        "moved": len(result.moved),
        "already_there": len(by_oid) - len(result.moved) - len(result.failed),
        "bytes_moved": result.bytes_moved,
        "wire_bytes": result.wire_bytes,
        "failed": [
            {"oid": oid, "size": pointer.size, "paths": by_oid.get(oid, []), "error": why}
            for oid, (pointer, why) in sorted(result.failed.items())
        ],
    }


def _paths_by_oid(files: Sequence[TrackedFile]) -> dict[str, list[str]]:
    by_oid: dict[str, list[str]] = {}
    for f in files:
        by_oid.setdefault(f.pointer.oid, []).append(f.path)
    return by_oid


def report_failures(result: TransferResult, files: Sequence[TrackedFile], verb: str, remote: Remote) -> None:
    if not result.failed:
        return  # no path of 100,000 to look up
    by_oid = _paths_by_oid(files)
    for oid, (pointer, why) in sorted(result.failed.items()):
        for path in by_oid.get(oid, ["?"]):
            ui.error(f"cannot {verb} '{path}' ({pointer.short_oid}, {human_size(pointer.size)}): {why}")


def place(ctx: RepoContext, files: Sequence[TrackedFile], verified: Container[str] = ()) -> worktree.PlaceResult:
    """Replace pointer files in the work tree with their content (`worktree.check_out`),
    naming each file that could not be placed."""
    from gitmlx.checkout import worktree

    result = worktree.check_out(ctx, files, verified)
    for message in result.failure_messages():
        ui.error(message)
    return result
