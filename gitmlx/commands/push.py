"""`git mlx push [REMOTE] [REF...] [--all] [--json]`: upload what the refs need and the artifact
remote lacks, without pushing any git ref.

Unlike the pre-push hook, an explicit push also covers every artifact in the refs' own
trees, not only commits the git remote lacks: it is how a push made with --no-verify
(or from a clone without the hooks) gets repaired. The remote is asked about every object
(the remote record is refreshed, never trusted), so what is already there costs one
existence check, not an upload, and a lost or damaged manifest or pack is uploaded again.
`--all` covers every ref's tree and the history of every ref."""

from __future__ import annotations

from gitmlx import actions, ui
from gitmlx.context import RepoContext
from gitmlx.errors import UsageError
from gitmlx.git import scan


def run(*, remote_name: str | None, refs: list[str], all_refs: bool, quiet: bool = False, as_json: bool = False) -> int:
    ctx = RepoContext()
    if remote_name and remote_name not in ctx.git_remotes():
        raise UsageError(f"no git remote named '{remote_name}'", "see 'git remote -v'")
    git_remote = remote_name or ctx.default_git_remote()
    if all_refs:
        needs = actions.push_needs(ctx, scan.ref_tips(ctx.top), [])
    else:
        excluded = [f"--remotes={git_remote}"] if git_remote else []
        needs = actions.push_needs(ctx, refs or ["HEAD"], excluded)
    remote = ctx.open_remote(git_remote)
    result = actions.push(ctx, remote, needs, trust_record=False, quiet=quiet, summary=not as_json)
    if as_json:
        ui.json_document("push", actions.transfer_json(result, needs.files, remote))
    if not result.ok:
        raise actions.push_refused(result, needs, remote)
    return 0
