"""`git mlx ls-files [--size] [--all]`: tracked artifacts at HEAD (or in all history)."""

from __future__ import annotations

from gitmlx import actions, ui
from gitmlx.context import RepoContext
from gitmlx.format.sizes import human_size


def run(*, show_size: bool, all_history: bool) -> int:
    ctx = RepoContext()
    files = actions.files_at(ctx, ["HEAD"], all_history)
    work_tree = ctx.paths.work_tree
    for f in sorted(files, key=lambda f: f.path):
        if all_history or work_tree is None:
            marker = " "
        else:
            # '*' content in place, '-' only the pointer is checked out (as in git lfs ls-files)
            from gitmlx.checkout.worktree import holds_pointer

            marker = "-" if holds_pointer(work_tree, f) else "*"
        size = f" ({human_size(f.pointer.size)})" if show_size else ""
        ui.info(f"{f.pointer.short_oid} {marker} {f.path}{size}")
    return 0
