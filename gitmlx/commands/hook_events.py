"""`git mlx post-checkout|post-merge|post-commit`: the hooks git runs after it moved
HEAD. They must stay instant; today they only make sure gitmlx's hooks are present."""

from __future__ import annotations

from gitmlx.errors import MlxError
from gitmlx.git import hooks, plumbing


def run(event: str, args: list[str]) -> int:
    try:
        paths = plumbing.repo_paths()
        if paths.work_tree is not None:
            hooks.install_hooks(paths.work_tree, only_missing=True)
    except (MlxError, OSError):
        pass  # a hook must never fail the user's checkout or commit
    return 0
