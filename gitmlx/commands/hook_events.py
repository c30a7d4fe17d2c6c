"""`git mlx post-checkout|post-merge|post-commit`: the hooks git runs after it moved HEAD.

They must stay instant. After a checkout or merge they place the files smudge deferred
(`handoff.place_deferred`), report files the smudge filter had to leave as pointers
(their objects could not be fetched) and exit 1, so the git command that ran them fails
visibly; they also make sure gitmlx's hooks are present.
"""

from __future__ import annotations

from gitmlx import ui
from gitmlx.checkout.handoff import UNRESTORED_FILE, place_deferred, take_paths
from gitmlx.errors import MlxError
from gitmlx.git import hooks, plumbing

SHOWN = 10


def run(*, event: str, args: list[str]) -> int:
    try:
        paths = plumbing.repo_paths()
    except MlxError:
        return 0
    if paths.work_tree is not None:
        try:
            hooks.install_hooks(paths.work_tree, only_missing=True)
        except (MlxError, OSError):
            pass  # a read-only hooks dir must not fail the user's checkout or commit
    if event == "post-commit":
        return 0
    status = place_deferred(paths.git_dir, ui.error)
    unrestored = still_pointers(take_paths(paths.git_dir, UNRESTORED_FILE))
    if not unrestored:
        return status
    listed = ", ".join(f"'{p}'" for p in unrestored[:SHOWN])
    more = f" and {len(unrestored) - SHOWN} more" if len(unrestored) > SHOWN else ""
    ui.error(
        f"{len(unrestored)} file(s) left as pointers because their content could not be fetched: {listed}{more}",
        "fix the artifact remote (see the errors above), then run 'git mlx pull'",
    )
    return 1


def still_pointers(recorded: list[str]) -> list[str]:
    """The recorded paths whose work-tree file really holds its pointer now.

    Smudge also runs outside checkouts (git diff and git show smudge into temporary
    files), so a failure recorded there must not be reported against the work tree.
    """
    if not recorded:
        return []
    from gitmlx.checkout.worktree import holds_pointer
    from gitmlx.context import RepoContext
    from gitmlx.git import scan

    ctx = RepoContext()
    if ctx.paths.work_tree is None:
        return []
    files = scan.pointers_in_index(ctx.top, recorded, tracked_only=False)  # paths git ran smudge on
    return sorted(f.path for f in files if holds_pointer(ctx.paths.work_tree, f))
