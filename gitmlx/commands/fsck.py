"""`git mlx fsck [--remote] [--full] [--repair] [--pointers] [--json]`: re-hash the local
store, quarantining corrupt objects; with `--remote`, check that the artifact remote
holds, intact, what HEAD needs; with `--repair`, upload every damaged object again from
this clone; with `--pointers` (alone, as in Git LFS), list the tracked files of HEAD and
the index that hold content instead of a pointer. Each problem is an `error:` line on
stderr; `--json` replaces the summary lines on stdout with one document
(docs/json-output.md)."""

from __future__ import annotations

import shlex
from collections.abc import Callable

from gitmlx import ui
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError
from gitmlx.format.sizes import human_size
from gitmlx.git import scan
from gitmlx.git.scan import TrackedFile
from gitmlx.maintenance import fsck, raw_files, reach
from gitmlx.remotes.base import Remote
from gitmlx.transfer.common import TransferResult


def run(
    *,
    check_remote: bool = False,
    full: bool = False,
    quiet: bool = False,
    repair: bool = False,
    pointers: bool = False,
    as_json: bool = False,
) -> int:
    ctx = RepoContext()
    if pointers:
        return check_pointers(ctx)
    say = (lambda _: None) if as_json else ui.info
    doc: dict[str, object] = {"remote": None, "repair": None}
    store = ctx.store
    total = list(store.iter_objects())
    with ui.progress(sum(o.size for o in total), len(total), "fsck", quiet) as bar:
        local = fsck.verify_local(store, lambda obj: (bar.bytes_done(obj.size), bar.file_done()))
    paths = reach.paths_by_oid(ctx.top, [o.oid for o in local.corrupt])
    for obj in local.corrupt:
        used = paths.get(obj.oid, [])
        where = f"used by {', '.join(repr(p) for p in used)}" if used else "used by no path in this repository"
        hint = "run 'git mlx pull' to download a good copy from the remote"
        if used:
            # Clean runs again on an intact work-tree file only when git is told to renormalize.
            hint += f"; if it was never pushed: git add --renormalize -- {shlex.quote(used[0])}"
        bad = store.root / "bad" / obj.oid
        ui.error(f"object {obj.oid[:10]} ({human_size(obj.size)}) {where} is corrupt; moved to '{bad}'", hint)
    for moved in local.damaged_packs:
        ui.error(
            f"store pack '{moved.name}' had a damaged index; its intact objects were kept, the file moved to '{moved}'",
            "run 'git mlx pull' to download what it held again",
        )
    doc["local"] = {
        "store": str(store.root),
        "checked": local.checked,
        "checked_bytes": local.checked_bytes,
        "corrupt": [{"oid": o.oid, "size": o.size, "paths": paths.get(o.oid, [])} for o in local.corrupt],
        "damaged_packs": [str(moved) for moved in local.damaged_packs],
    }
    say(
        f"local store '{store.root}': checked {local.checked} objects ({human_size(local.checked_bytes)}), "
        f"{len(local.corrupt)} corrupt"
    )
    failed = bool(local.corrupt or local.damaged_packs)
    if check_remote or full or repair:
        files = scan.pointers_in_tree(ctx.top, "HEAD") if reach.has_head(ctx.top) else []
        remote = ctx.open_remote()
        pointers = {f.pointer.oid: f.pointer for f in files}
        with ui.progress(0, len(pointers), "fsck remote", quiet) as bar:
            report = fsck.check_remote(
                store, remote, pointers.values(), full, ctx.config.integer("mlx.concurrency"), bar.file_done
            )
        for f in sorted(files, key=lambda f: f.path):
            problem = report.problems.get(f.pointer.oid)
            if problem is not None:
                p = f.pointer
                hint = None if repair else problem.hint  # the repair follows
                ui.error(f"'{f.path}' ({p.short_oid}, {human_size(p.size)}): {problem.message}", hint)
        depth = "rebuilt and verified" if full else "checked manifests and packs of"
        doc["remote"] = _remote_doc(remote, report, files, full)
        say(
            f"remote '{remote.display_url}': {depth} {report.checked} objects HEAD needs, "
            f"{len(report.problems)} with problems"
        )
        if repair and report.problems:
            result = _repair(ctx, remote, report, files, quiet, say)
            doc["repair"] = {"uploaded": len(result.moved), "failed": sorted(result.failed)}
            failed = failed or not result.ok
        else:
            failed = failed or not report.ok
    if as_json:
        ui.json_document(
            "fsck", {"ok": not failed, "local": doc["local"], "remote": doc["remote"], "repair": doc["repair"]}
        )
    return 1 if failed else 0


def check_pointers(ctx: RepoContext) -> int:
    """`--pointers`: exit 1 naming every tracked file whose blob is not a pointer."""
    found = raw_files.in_head_and_index(ctx.top, reach.has_head(ctx.top))
    for raw in found:
        size = human_size(raw.size)
        ui.error(f"'{raw.path}' ({size}) should be a pointer (filter=mlx) but holds content in {raw.where}")
    if found:
        example = shlex.quote(found[0].path)
        raise MlxError(
            f"{len(found)} tracked file(s) are not pointers (listed above)",
            f"store them with gitmlx: 'git add --renormalize -- {example}' and commit; "
            "to fix the commits that hold them as well: 'git mlx migrate import -I PATTERN'",
        )
    ui.info("pointers: every tracked file in HEAD and the index is a pointer")
    return 0


def _remote_doc(remote: Remote, report: fsck.RemoteReport, files: list[TrackedFile], full: bool) -> dict[str, object]:
    paths: dict[str, list[str]] = {}
    for f in files:
        paths.setdefault(f.pointer.oid, []).append(f.path)
    problems = [
        {"oid": oid, "size": p.pointer.size, "paths": sorted(paths.get(oid, [])), "message": p.message, "hint": p.hint}
        for oid, p in sorted(report.problems.items())
    ]
    return {"url": remote.display_url, "full": full, "checked": report.checked, "problems": problems}


def _repair(
    ctx: RepoContext,
    remote: Remote,
    report: fsck.RemoteReport,
    files: list[TrackedFile],
    quiet: bool,
    say: Callable[[str], None],
) -> TransferResult:
    """Upload every damaged object again from this clone."""
    problems = list(report.problems.values())
    with ui.progress(sum(p.pointer.size for p in problems), len(problems), "repair", quiet) as bar:
        result = fsck.repair_remote(
            ctx.store, remote, problems, ctx.config.integer("mlx.concurrency"), bar.bytes_done, bar.file_done
        )
    for f in sorted(files, key=lambda f: f.path):
        if f.pointer.oid in result.failed:
            p, why = f.pointer, result.failed[f.pointer.oid][1]
            ui.error(
                f"cannot repair '{f.path}' ({p.short_oid}, {human_size(p.size)}): {why}",
                "run 'git mlx fsck --remote --full --repair' in a clone that has the file",
            )
    say(
        f"remote '{remote.display_url}': uploaded {len(result.moved)} damaged objects again, "
        f"{len(result.failed)} could not be"
    )
    return result
