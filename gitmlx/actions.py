"""Steps several commands share: choose files, move them with progress, place them.

Owns: the composition of scan → transfer → worktree with a progress display, so
`fetch`, `pull`, `push`, `pre-push`, `checkout` and `demo` stay short and agree.
Must not: parse command lines or decide exit statuses.
"""

from __future__ import annotations

from collections.abc import Container, Sequence

from gitmlx import ui
from gitmlx.checkout import worktree
from gitmlx.config import split_patterns
from gitmlx.context import RepoContext
from gitmlx.format import patterns
from gitmlx.format.sizes import human_size
from gitmlx.git import scan
from gitmlx.git.scan import TrackedFile
from gitmlx.remotes.base import Remote
from gitmlx.transfer import download as downloads
from gitmlx.transfer import upload as uploads
from gitmlx.transfer.common import TransferResult


def fetch_selection(ctx: RepoContext, include: Sequence[str], exclude: Sequence[str]) -> tuple[list[str], list[str]]:
    """-I/-X from the command line, else mlx.fetchinclude / mlx.fetchexclude."""
    inc = list(include) or split_patterns(ctx.config.value("mlx.fetchinclude"))
    exc = list(exclude) or split_patterns(ctx.config.value("mlx.fetchexclude"))
    return inc, exc


def files_at(
    ctx: RepoContext,
    refs: Sequence[str] = ("HEAD",),
    all_history: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
) -> list[TrackedFile]:
    """Tracked files in the trees of `refs` (or every commit with `all_history`)."""
    if all_history:
        found = scan.pointers_in_range(ctx.top, ["--all"], tracked_at=["HEAD"])
    else:
        found = [f for ref in refs for f in scan.pointers_in_tree(ctx.top, ref)]
    return [f for f in found if patterns.selected(f.path, include, exclude)]


def pointer_files(ctx: RepoContext, files: Sequence[TrackedFile]) -> list[TrackedFile]:
    """The work-tree files among `files` that still hold their pointer."""
    work_tree = ctx.paths.work_tree
    return [f for f in files if work_tree is not None and worktree.holds_pointer(work_tree, f)]


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
