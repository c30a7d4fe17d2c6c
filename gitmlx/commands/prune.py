"""`git mlx prune [--dry-run] [--verify-remote]`: delete local objects that no recent ref
needs and that the artifact remote holds."""

from __future__ import annotations

from gitmlx import ui
from gitmlx.checkout import thin
from gitmlx.config import MAX_DAYS, parse_days
from gitmlx.context import RepoContext
from gitmlx.errors import ConfigError
from gitmlx.format.sizes import human_size
from gitmlx.git import scan
from gitmlx.maintenance import prune, reach
from gitmlx.transfer.gc_marks import now

DEFAULT_OFFSET_DAYS = 3.0


def offset_days(ctx: RepoContext) -> float:
    found = ctx.config.get("mlx.pruneoffsetdays")
    if found is None:
        return DEFAULT_OFFSET_DAYS
    days = parse_days(found.value)
    if days is None:
        raise ConfigError(
            f"invalid mlx.pruneoffsetdays {found.value!r} (from {found.source})",
            f"set it to a number of days, 0 to {MAX_DAYS:.0f}",
        )
    return days


def run(*, dry_run: bool = False, verify_remote: bool = False, verbose: bool = False) -> int:
    ctx = RepoContext()
    keep = set(reach.keep_list(ctx.top, offset_days(ctx), now(), lambda message: ui.phase("prune", message)).all)
    # mlx.thin: an artifact checked out whole needs no store copy where the remote holds it.
    held = thin.held_in_work_tree(ctx, scan.pointers_in_index(ctx.top)) if ctx.thin else {}
    remote = ctx.open_remote()
    ui.phase("prune", f"asking remote '{remote.display_url}' about the local objects outside the {len(keep)} kept")
    report = prune.prune(
        ctx.store, remote, keep - held.keys(), dry_run, verify_remote, ctx.config.integer("mlx.concurrency")
    )
    if not dry_run:
        thin.link_held(ctx, [held[o.oid] for o in report.pruned if o.oid in held])
    verb = "would prune" if dry_run else "pruned"
    if verbose or dry_run:
        for obj in report.pruned:
            ui.info(f"{verb} {obj.oid[:10]} ({human_size(obj.size)})")
    ui.info(
        f"{verb} {len(report.pruned)} of {len(report.total)} local objects, "
        f"{'freeing' if not dry_run else 'to free'} {human_size(report.pruned_bytes)}; "
        f"kept {report.kept} ({human_size(report.kept_bytes)})"
    )
    if held:
        only = sum(1 for o in report.pruned if o.oid in held)
        ui.info(f"mlx.thin: {only} of them checked out, now only in the work tree")
    if not dry_run:
        removed, freed = ctx.store.sweep_tmp()
        if removed:
            ui.info(f"removed {removed} temporary file(s) killed commands left in the store ({human_size(freed)})")
    if report.not_on_remote:
        what = "does not hold them intact" if verify_remote else "does not hold them"
        ui.note(
            f"kept {len(report.not_on_remote)} object(s) no recent ref needs: remote '{remote.display_url}' "
            f"{what}; 'git mlx push --all' uploads them"
        )
    return 0
