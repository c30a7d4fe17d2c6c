"""`git mlx checkout [PATH...]`: replace pointer files in the work tree with content
already in the local store (see `pull` to fetch first)."""

from __future__ import annotations

from gitmlx import actions, ui
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError
from gitmlx.format import patterns
from gitmlx.git import scan


def run(*, paths: list[str]) -> int:
    ctx = RepoContext()
    files = scan.pointers_in_index(ctx.top)
    if paths:
        named = patterns.Selection(cli_include=patterns.PatternList(tuple(paths), "PATH"))
        actions.require_named(named, files, "the index", "")
        files = [f for f in files if named.choose(f.path).wanted]
    result = actions.place(ctx, files)
    if result.placed:
        ui.note(f"checked out {len(result.placed)} file(s)")
    for tracked in result.missing:
        ui.warn(f"'{tracked.path}' is not in the local store; run 'git mlx pull' to fetch it")
    if result.failed:
        raise MlxError(f"{len(result.failed)} file(s) could not be checked out (listed above)")
    return 0
