"""`git mlx env`: resolved configuration and where each value came from."""

from __future__ import annotations

from gitmlx import __version__, ui
from gitmlx.config import SETTINGS, git_settings
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError


def run() -> int:
    ctx = RepoContext()
    ui.info(f"gitmlx {__version__}")
    ui.info(f"repository: {ctx.top}")
    ui.info(f"local store: {ctx.store.root}")
    git_remote = ctx.default_git_remote()
    ui.info(f"git remote: {git_remote or '(none)'}")
    try:
        url = ctx.artifact_url(git_remote)
        ui.info(f"artifact remote: {url.value}\t[{url.source}]")
    except MlxError as exc:
        ui.info(f"artifact remote: (none) - {exc.message}")
    for setting in SETTINGS:
        found = ctx.config.get(setting.key)
        if found is not None:
            ui.info(f"{setting.key}={found.value}\t[{found.source}]")
    for key in git_settings():
        ui.info(f"{key}={ctx.config.git(key) or '(unset)'}")
    return 0
