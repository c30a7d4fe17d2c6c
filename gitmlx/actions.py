"""Steps several commands share: choose files, move them with progress, place them.

Owns: the composition of scan → transfer → worktree with a progress display, so
`fetch`, `pull`, `push`, `pre-push`, `checkout` and `demo` stay short and agree.
Must not: parse command lines or decide exit statuses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Sequence

from gitmlx import ui
from gitmlx.checkout import worktree
from gitmlx.config import split_patterns
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError
from gitmlx.format import patterns
from gitmlx.format.sizes import human_size
from gitmlx.git import scan
from gitmlx.git.scan import TrackedFile
from gitmlx.remotes.base import Remote
from gitmlx.transfer import download as downloads
from gitmlx.transfer import upload as uploads
from gitmlx.transfer.common import TransferResult


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


def download(ctx: RepoContext, remote: Remote, files: Sequence[TrackedFile], quiet: bool = False) -> TransferResult:
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
        if todo:
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


def upload(ctx: RepoContext, remote: Remote, files: Sequence[TrackedFile], quiet: bool = False) -> TransferResult:
    pointers = [f.pointer for f in files]
    total = sum(p.size for p in {p.oid: p for p in pointers}.values())
    with ui.progress(total, len({p.oid for p in pointers}), "push", quiet) as bar:
        result = uploads.upload(
            ctx.store,
            remote,
            pointers,
            ctx.config.integer("mlx.concurrency"),
            bar.bytes_done,
            bar.file_done,
            notice=ui.warn,
        )
        if result.moved:
            bar.close_summary = (
                f"uploaded {len(result.moved)} objects to '{remote.display_url}' ({len(result.skipped)} already there)"
            )
    report_failures(result, files, "push", remote)
    return result


def report_failures(result: TransferResult, files: Sequence[TrackedFile], verb: str, remote: Remote) -> None:
    by_oid: dict[str, list[str]] = {}
    for f in files:
        by_oid.setdefault(f.pointer.oid, []).append(f.path)
    for oid, (pointer, why) in sorted(result.failed.items()):
        for path in by_oid.get(oid, ["?"]):
            ui.error(f"cannot {verb} '{path}' ({pointer.short_oid}, {human_size(pointer.size)}): {why}")


def place(ctx: RepoContext, files: Sequence[TrackedFile], verified: Container[str] = ()) -> worktree.PlaceResult:
    """Replace pointer files in the work tree with their content (`worktree.check_out`),
    naming each file that could not be placed."""
    result = worktree.check_out(ctx, files, verified)
    for message in result.failure_messages():
        ui.error(message)
    return result
