"""`git mlx uninstall`: remove the filter configuration and gitmlx's own hooks."""

from __future__ import annotations

from gitmlx import ui
from gitmlx.errors import NotARepository
from gitmlx.git import hooks, plumbing

FILTER_KEYS = (
    "filter.mlx.process",
    "filter.mlx.clean",
    "filter.mlx.smudge",
    "filter.mlx.required",
    "diff.mlx.textconv",
)


def run(scope: str = "global") -> int:
    try:
        paths = plumbing.repo_paths()
    except NotARepository:
        paths = None
    cwd = paths.work_tree if paths else None
    for key in FILTER_KEYS:
        plumbing.unset_config(key, scope=scope, cwd=cwd)
    ui.info(f"gitmlx filters removed ({scope})")
    if paths is not None and paths.work_tree is not None:
        removed = hooks.uninstall_hooks(paths.work_tree)
        if removed:
            ui.info(f"hooks removed: {', '.join(removed)} (other hooks left as they were)")
    return 0
