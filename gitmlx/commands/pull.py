"""`git mlx pull [REMOTE] [-I P] [-X P] [--json]`: fetch what HEAD needs, then check it out."""

from __future__ import annotations

from gitmlx import actions, ui
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError


def run(
    *, remote_name: str | None, include: list[str], exclude: list[str], quiet: bool = False, as_json: bool = False
) -> int:
    ctx = RepoContext()
    selection = actions.fetch_selection(ctx, include, exclude)
    files = actions.files_at(ctx, ["HEAD"], False, selection, quiet)
    # mlx.thin: the work-tree files are the local copies; fetch only what still needs placing.
    wanted = actions.pointer_files(ctx, files) if ctx.thin else files
    remote = ctx.open_remote(remote_name)
    fetched = actions.download(ctx, remote, wanted, quiet=quiet, summary=not as_json)
    # Objects this command just downloaded were hashed on the way in: placing them needs
    # no second hash (the kernel copies them).
    placed = actions.place(ctx, files, verified={p.oid for p in fetched.moved})
    if as_json:
        checkout = {
            "placed": len(placed.placed),
            "failed": [{"path": tracked.path, "error": why} for tracked, why in placed.failed],
        }
        ui.json_document("pull", {"fetch": actions.transfer_json(fetched, wanted, remote), "checkout": checkout})
    elif placed.placed and not quiet:
        ui.note(f"checked out {len(placed.placed)} file(s)")
    if not fetched.ok or placed.failed:
        raise MlxError(
            f"{len(fetched.failed) + len(placed.failed)} file(s) could not be pulled (listed above)",
            f"if the disk is full, free space where the local store lives ('{ctx.store.root}'), then run it again",
        )
    return 0
