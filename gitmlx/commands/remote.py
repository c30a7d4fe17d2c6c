"""`git mlx remote [set URL] [--endpoint-url U] [--region R]`: show or set the artifact
remote in the committed `.mlxconfig`."""

from __future__ import annotations

from gitmlx import ui
from gitmlx.context import MLXCONFIG, RepoContext
from gitmlx.errors import MlxError
from gitmlx.git import plumbing
from gitmlx.remotes.base import RemoteOptions
from gitmlx.remotes.by_url import open_remote


def run_show() -> int:
    ctx = RepoContext()
    url = ctx.artifact_url()
    ui.info(f"{url.value}\t({url.source})")
    for key in ("mlx.s3.endpoint-url", "mlx.s3.region"):
        found = ctx.config.get(key)
        if found is not None:
            ui.info(f"{key}={found.value}\t({found.source})")
    return 0


def run_set(*, url: str, endpoint_url: str | None, region: str | None) -> int:
    ctx = RepoContext()
    if ctx.paths.work_tree is None:
        raise MlxError("this is a bare repository", "run 'git mlx remote set' in a clone")
    open_remote(url, RemoteOptions(endpoint_url=endpoint_url, region=region))  # validates the URL
    path = ctx.paths.work_tree / MLXCONFIG
    plumbing.set_config("mlx.url", url, file=path)
    for key, value in (("mlx.s3.endpoint-url", endpoint_url), ("mlx.s3.region", region)):
        if value is not None:
            plumbing.set_config(key, value, file=path)
    ui.info(f"artifact remote set to {url} in {MLXCONFIG} (commit it so clones use it too)")
    return 0
