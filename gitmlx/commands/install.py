"""`git mlx install`: filter configuration (global by default) and, inside a repository,
gitmlx's hooks."""

from __future__ import annotations

from pathlib import Path

from gitmlx import ui
from gitmlx.config import git_settings
from gitmlx.errors import MlxError, NotARepository, UsageError
from gitmlx.git import hooks, plumbing


def run(*, scope: str = "global", skip_smudge: bool = False, force: bool = False) -> int:
    try:
        paths = plumbing.repo_paths()
    except NotARepository:
        paths = None
    if scope == "local" and (paths is None or paths.work_tree is None):
        raise UsageError("'--local' needs a repository with a work tree", "run it inside your repository")
    for key, value in git_settings(skip_smudge).items():
        plumbing.set_config(key, value, scope=scope, cwd=paths.work_tree if paths else None)
    ui.info(f"gitmlx filters configured ({scope})")
    if paths is None or paths.work_tree is None:
        return 0
    report = hooks.install_hooks(Path(paths.work_tree), force=force)
    for name in report.chained:
        ui.info(f"kept your existing {name} hook: it now runs first, as {name}{hooks.CHAINED_SUFFIX}")
    if report.installed:
        ui.info(f"hooks installed: {', '.join(report.installed)}")
    if report.refused:
        names = ", ".join(f"'{p}'" for p in report.refused)
        raise MlxError(
            f"hook {names} already exists and is not gitmlx's",
            "run 'git mlx install --force' to keep it and run it before gitmlx's hook",
        )
    return 0
