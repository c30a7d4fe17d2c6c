"""`git mlx ls-files [--size] [--all] [-z]`: tracked artifacts at HEAD (or in all history).

Paths are quoted as git quotes them (core.quotePath), so a newline in a name cannot
split an entry; `-z` ends each entry with NUL instead and quotes nothing.
"""

from __future__ import annotations

from gitmlx import actions, ui
from gitmlx.config import parse_bool
from gitmlx.context import RepoContext
from gitmlx.format.sizes import human_size
from gitmlx.git.quote import quote_path


def run(*, show_size: bool, all_history: bool, nul: bool = False) -> int:
    ctx = RepoContext()
    quote_non_ascii = parse_bool(ctx.config.git("core.quotepath") or "true")
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
        if nul:
            ui.record(f"{f.pointer.short_oid} {marker} {f.path}{size}")
        else:
            ui.info(f"{f.pointer.short_oid} {marker} {quote_path(f.path, quote_non_ascii)}{size}")
    ui.flush()
    return 0
