"""`git mlx push [REMOTE] [REF...] [--all]`: upload what the refs need and the artifact
remote lacks, without pushing any git ref."""

from __future__ import annotations

from gitmlx import actions
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError, UsageError
from gitmlx.git import scan


def run(remote_name: str | None, refs: list[str], all_refs: bool, quiet: bool = False) -> int:
    ctx = RepoContext()
    if remote_name and remote_name not in ctx.git_remotes():
        raise UsageError(f"no git remote named '{remote_name}'", "see 'git remote -v'")
    git_remote = remote_name or ctx.default_git_remote()
    if all_refs:
        files = scan.pointers_in_range(ctx.top, ["--all"])
    else:
        files = scan.pointers_in_range(ctx.top, refs or ["HEAD"], [f"--remotes={git_remote}"] if git_remote else [])
    remote = ctx.open_remote(git_remote)
    result = actions.upload(ctx, remote, files, quiet=quiet)
    if not result.ok:
        raise MlxError(f"{len(result.failed)} object(s) could not be uploaded (listed above)")
    return 0
