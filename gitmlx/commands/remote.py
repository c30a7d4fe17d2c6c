"""`git mlx remote [set URL] [--endpoint-url U] [--region R]`: show or set the artifact
remote in the committed `.mlxconfig`; `git mlx remote upgrade [REMOTE]`: move a format 1
remote to format 2 (maintenance/upgrade.py)."""

from __future__ import annotations

from gitmlx import ui
from gitmlx.context import MLXCONFIG, RepoContext
from gitmlx.errors import MlxError, UsageError
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


def run_upgrade(*, remote_name: str | None) -> int:
    from gitmlx.maintenance.upgrade import upgrade  # only this subcommand needs it

    ctx = RepoContext()
    if remote_name and remote_name not in ctx.git_remotes():
        raise UsageError(f"no git remote named '{remote_name}'", "see 'git remote -v'")
    remote = ctx.open_remote(remote_name or ctx.default_git_remote())
    report = upgrade(remote, ctx.store.tmp_dir, ctx.config.integer("mlx.concurrency"))
    where = f"remote '{remote.display_url}'"
    if report.before is None:
        ui.info(f"{where} was empty: marked as format 2")
    elif report.before == 2 and not report.copied:
        ui.info(f"{where} is already format 2")
    else:
        shards = len(report.written_shards)
        ui.info(f"{where}: copied {report.copied} manifest(s) into {shards} shard(s); it is format 2 now")
    for oid in report.damaged:
        ui.warn(f"manifest of object {oid[:10]} is damaged and was not copied; run 'git mlx fsck --remote --repair'")
    return 0
