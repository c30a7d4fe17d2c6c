"""`git mlx du`: logical bytes against bytes stored, locally and on the remote — the
dedup ratio — and where the index's artifacts are locally (store, work tree only)."""

from __future__ import annotations

from gitmlx import actions, ui
from gitmlx.checkout import thin
from gitmlx.context import RepoContext
from gitmlx.format.sizes import human_size
from gitmlx.git import scan
from gitmlx.transfer.inventory import remote_usage


def _row(label: str, objects: int, logical: int, stored: int) -> str:
    ratio = f"{logical / stored:.2f}x" if stored else "-"
    return f"{label:<40} {objects:>8} {human_size(logical):>12} {human_size(stored):>12} {ratio:>8}"


def run(*, remote_name: str | None = None) -> int:
    ctx = RepoContext()
    ui.info(f"{'':<40} {'objects':>8} {'logical':>12} {'stored':>12} {'ratio':>8}")
    local = list(ctx.store.iter_objects())
    local_bytes = sum(o.size for o in local)
    ui.info(_row("local store", len(local), local_bytes, local_bytes))
    where = thin.whereabouts(ctx, scan.pointers_in_index(ctx.top))
    only = where.work_tree_only
    ui.info(
        _row("work tree only (checked out)", len({f.pointer.oid for f in only}), where.size(only), where.size(only))
    )
    absent = where.nowhere
    ui.info(_row("not local (pointers, changed files)", len({f.pointer.oid for f in absent}), where.size(absent), 0))
    remote = ctx.open_remote(remote_name)
    known = {f.pointer.oid: f.pointer.size for f in actions.files_at(ctx, all_history=True)}
    usage = remote_usage(remote, known)
    ui.info(_row(f"remote {remote.display_url}", len(usage.objects), usage.logical_bytes, usage.stored_bytes))
    ui.info(f"(remote: {len(usage.packs)} packs, {human_size(usage.manifest_bytes)} of manifests)")
    return 0
