"""`git mlx uninstall`: remove the filter configuration and gitmlx's own hooks."""

from __future__ import annotations

from gitmlx import ui
from gitmlx.config import git_settings
from gitmlx.errors import NotARepository
from gitmlx.git import hooks, plumbing


def run(*, scope: str = "global") -> int:
    try:
        paths = plumbing.repo_paths()
    except NotARepository:
        paths = None
    cwd = paths.work_tree if paths else None
    for key in git_settings():
        plumbing.unset_config(key, scope=scope, cwd=cwd)
    ui.info(f"gitmlx filters removed ({scope})")
    if paths is not None and paths.work_tree is not None:
        removed = hooks.uninstall_hooks(paths.work_tree)
        if removed:
            ui.info(f"hooks removed: {', '.join(removed)} (other hooks left as they were)")
    return 0
