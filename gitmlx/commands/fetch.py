"""`git mlx fetch [REMOTE] [REF...] [-I P] [-X P] [--all] [--json]`: download into the local
store what the refs need; the work tree is not touched."""

from __future__ import annotations

from gitmlx import actions, ui
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError


def run(
    *,
    remote_name: str | None,
    refs: list[str],
    include: list[str],
    exclude: list[str],
    all_history: bool,
    quiet: bool = False,
    as_json: bool = False,
) -> int:
    ctx = RepoContext()
    selection = actions.fetch_selection(ctx, include, exclude)
    files = actions.files_at(ctx, refs or ["HEAD"], all_history, selection, quiet)
    remote = ctx.open_remote(remote_name)
    result = actions.download(ctx, remote, files, quiet=quiet, summary=not as_json)
    if as_json:
        ui.json_document("fetch", actions.transfer_json(result, files, remote))
    if not result.ok:
        raise MlxError(
            f"{len(result.failed)} object(s) could not be fetched (listed above)",
            f"if the disk is full, free space where the local store lives ('{ctx.store.root}'), then run it again",
        )
    return 0
