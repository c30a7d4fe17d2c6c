"""`git mlx du [REMOTE] [--json]`: logical bytes against bytes stored, locally and on the
remote (the dedup ratio), and where the index's artifacts are locally: in the store, in
the work tree only (`mlx.thin`), or nowhere.

The figures are gathered into `Usage` rows first, then shown as a table or as one JSON
document (docs/json-output.md), so both always say the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitmlx import actions, ui
from gitmlx.checkout import thin
from gitmlx.context import RepoContext
from gitmlx.format.sizes import human_size
from gitmlx.git import scan
from gitmlx.transfer.inventory import remote_usage


@dataclass(frozen=True)
class Usage:
    """One place objects are kept, in numbers."""

    location: str  # the store's folder, or the remote's URL (no credentials)
    objects: int
    logical_bytes: int
    stored_bytes: int

    @property
    def ratio(self) -> float | None:
        return self.logical_bytes / self.stored_bytes if self.stored_bytes else None

    def as_json(self) -> dict[str, object]:
        return {
            "location": self.location,
            "objects": self.objects,
            "logical_bytes": self.logical_bytes,
            "stored_bytes": self.stored_bytes,
            "ratio": self.ratio,
        }


def _row(label: str, usage: Usage) -> str:
    ratio = f"{usage.ratio:.2f}x" if usage.ratio is not None else "-"
    logical, stored = human_size(usage.logical_bytes), human_size(usage.stored_bytes)
    return f"{label:<40} {usage.objects:>8} {logical:>12} {stored:>12} {ratio:>8}"


def run(*, remote_name: str | None = None, as_json: bool = False) -> int:
    ctx = RepoContext()
    local_objects = list(ctx.store.iter_objects())
    local_bytes = sum(o.size for o in local_objects)
    local = Usage(str(ctx.store.root), len(local_objects), local_bytes, local_bytes)
    where = thin.whereabouts(ctx, scan.pointers_in_index(ctx.top))
    only, absent = where.work_tree_only, where.nowhere
    in_work_tree = Usage(str(ctx.top), len({f.pointer.oid for f in only}), where.size(only), where.size(only))
    not_local = Usage("", len({f.pointer.oid for f in absent}), where.size(absent), 0)
    remote = ctx.open_remote(remote_name)
    known = {f.pointer.oid: f.pointer.size for f in actions.files_at(ctx, all_history=True)}
    found = remote_usage(remote, known)
    on_remote = Usage(remote.display_url, len(found.objects), found.logical_bytes, found.stored_bytes)
    if as_json:
        remote_doc = on_remote.as_json() | {"packs": len(found.packs), "manifest_bytes": found.manifest_bytes}
        ui.json_document(
            "du",
            {
                "local": local.as_json(),
                "work_tree_only": {"objects": in_work_tree.objects, "bytes": in_work_tree.logical_bytes},
                "not_local": {"objects": not_local.objects, "bytes": not_local.logical_bytes},
                "remote": remote_doc,
            },
        )
        return 0
    ui.info(f"{'':<40} {'objects':>8} {'logical':>12} {'stored':>12} {'ratio':>8}")
    ui.info(_row("local store", local))
    ui.info(_row("work tree only (checked out)", in_work_tree))
    ui.info(_row("not local (pointers, changed files)", not_local))
    ui.info(_row(f"remote {remote.display_url}", on_remote))
    ui.info(f"(remote: {len(found.packs)} packs, {human_size(found.manifest_bytes)} of manifests)")
    return 0
