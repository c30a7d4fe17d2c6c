"""`git mlx fsck [--remote] [--full]`: re-hash the local store, quarantining corrupt
objects; with `--remote`, check that the artifact remote holds, intact, what HEAD needs."""

from __future__ import annotations

import shlex

from gitmlx import ui
from gitmlx.context import RepoContext
from gitmlx.git import scan
from gitmlx.maintenance import fsck, reach
from gitmlx.sizes import human_size


def run(check_remote: bool = False, full: bool = False, quiet: bool = False) -> int:
    ctx = RepoContext()
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
    ui.info(
        f"local store '{store.root}': checked {local.checked} objects ({human_size(local.checked_bytes)}), "
        f"{len(local.corrupt)} corrupt"
    )
    failed = bool(local.corrupt)
    if check_remote or full:
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
                ui.error(f"'{f.path}' ({p.short_oid}, {human_size(p.size)}): {problem.message}", problem.hint)
        depth = "rebuilt and verified" if full else "checked manifests and packs of"
        ui.info(
            f"remote '{remote.display_url}': {depth} {report.checked} objects HEAD needs, "
            f"{len(report.problems)} with problems"
        )
        failed = failed or not report.ok
    return 1 if failed else 0
