"""`git mlx fetch [REMOTE] [REF...] [-I P] [-X P] [--all]`: download into the local
store what the refs need; the work tree is not touched."""

from __future__ import annotations

from gitmlx import actions
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
) -> int:
    ctx = RepoContext()
    selection = actions.fetch_selection(ctx, include, exclude)
    files = actions.files_at(ctx, refs or ["HEAD"], all_history, selection, quiet)
    result = actions.download(ctx, ctx.open_remote(remote_name), files, quiet=quiet)
    if not result.ok:
        raise MlxError(
            f"{len(result.failed)} object(s) could not be fetched (listed above)",
            f"if the disk is full, free space where the local store lives ('{ctx.store.root}'), then run it again",
        )
    return 0
