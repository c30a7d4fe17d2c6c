"""`git mlx post-checkout|post-merge|post-commit`: the hooks git runs after it moved HEAD.

They must stay instant. After a checkout or merge they report files the smudge filter
had to leave as pointers (their objects could not be fetched) and exit 1, so the git
command that ran them fails visibly; they also make sure gitmlx's hooks are present.
"""

from __future__ import annotations

from gitmlx import ui
from gitmlx.errors import MlxError
from gitmlx.filter_session import take_unrestored
from gitmlx.git import hooks, plumbing

SHOWN = 10


def run(event: str, args: list[str]) -> int:
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
    unrestored = take_unrestored(paths.git_dir)
    if not unrestored:
        return 0
    listed = ", ".join(f"'{p}'" for p in unrestored[:SHOWN])
    more = f" and {len(unrestored) - SHOWN} more" if len(unrestored) > SHOWN else ""
    ui.error(
        f"{len(unrestored)} file(s) left as pointers because their content could not be fetched: {listed}{more}",
        "fix the artifact remote (see the errors above), then run 'git mlx pull'",
    )
    return 1
