"""`git mlx ls-files [--size] [--all] [-z] [--json]`: tracked artifacts at HEAD (or in all history).

Paths are quoted as git quotes them (core.quotePath), so a newline in a name cannot
split an entry; `-z` ends each entry with NUL instead and quotes nothing; `--json` prints
one document (docs/json-output.md).
"""

from __future__ import annotations

from pathlib import Path

from gitmlx import actions, ui
from gitmlx.config import parse_bool
from gitmlx.context import RepoContext
from gitmlx.format.sizes import human_size
from gitmlx.git.quote import quote_path
from gitmlx.git.scan import TrackedFile


def run(*, show_size: bool, all_history: bool, nul: bool = False, as_json: bool = False) -> int:
    ctx = RepoContext()
    files = sorted(actions.files_at(ctx, ["HEAD"], all_history), key=lambda f: f.path)
    work_tree = None if all_history else ctx.paths.work_tree
    if as_json:
        ui.json_document("ls-files", {"files": [_entry(ctx, work_tree, f) for f in files]})
        return 0
    quote_non_ascii = parse_bool(ctx.config.git("core.quotepath") or "true")
    for f in files:
        if work_tree is None:
            marker = " "
        else:
            # '*' content in place, '-' only the pointer is checked out (as in git lfs ls-files)
            from gitmlx.checkout.worktree import holds_pointer

            marker = "-" if holds_pointer(work_tree, f) else "*"
        size = f" ({human_size(f.pointer.size)})" if show_size else ""
        if nul:
            ui.record(f"{f.pointer.short_oid} {marker} {f.path}{size}")
        else:
            ui.info(f"{f.pointer.short_oid} {marker} {quote_path(f.path, quote_non_ascii)}{size}")
    ui.flush()
    return 0


def _entry(ctx: RepoContext, work_tree: Path | None, f: TrackedFile) -> dict[str, object]:
    present = None
    if work_tree is not None:
        from gitmlx.checkout.worktree import holds_pointer

        # Not re-hashed: a file edited since counts as present (`git mlx status` names it).
        present = (work_tree / f.path).is_file() and not holds_pointer(work_tree, f)
    return {
        "path": f.path,
        "oid": f.pointer.oid,
        "size": f.pointer.size,
        "present": present,
        "stored": ctx.store.has(f.pointer.oid),
    }
