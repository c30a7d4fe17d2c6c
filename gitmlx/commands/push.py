"""`git mlx push [REMOTE] [REF...] [--all] [--json]`: upload what the refs need and the artifact
remote lacks, without pushing any git ref.

Unlike the pre-push hook, an explicit push also covers every artifact in the refs' own
trees, not only commits the git remote lacks: it is how a push made with --no-verify
(or from a clone without the hooks) gets repaired. The remote is asked which objects it
has, so what is already there costs one existence check, not an upload."""

from __future__ import annotations

from gitmlx import actions, ui
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError, UsageError
from gitmlx.git import scan


def run(*, remote_name: str | None, refs: list[str], all_refs: bool, quiet: bool = False, as_json: bool = False) -> int:
    ctx = RepoContext()
    if remote_name and remote_name not in ctx.git_remotes():
        raise UsageError(f"no git remote named '{remote_name}'", "see 'git remote -v'")
    git_remote = remote_name or ctx.default_git_remote()
    if all_refs:
        files = actions.range_uploads(ctx, scan.range_pointers(ctx.top, ["--all"], [], ["HEAD"]))
    else:
        targets = refs or ["HEAD"]
        excluded = [f"--remotes={git_remote}"] if git_remote else []
        files = actions.range_uploads(ctx, scan.range_pointers(ctx.top, targets, excluded, targets))
        files += [f for ref in targets for f in scan.pointers_in_tree(ctx.top, ref)]
    remote = ctx.open_remote(git_remote)
    result = actions.upload(ctx, remote, files, quiet=quiet, summary=not as_json)
    if as_json:
        ui.json_document("push", actions.transfer_json(result, files, remote))
    if not result.ok:
        raise MlxError(f"{len(result.failed)} object(s) could not be uploaded (listed above)")
    return 0
