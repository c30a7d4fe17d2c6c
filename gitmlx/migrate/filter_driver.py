"""gitmlx's filter driver as this clone configures it, which both migrations depend on.

Owns: the `filter.mlx.*` keys `git mlx install` writes, and reading them back with an
error that says to install first. `from-lfs` copies them onto the `lfs` driver; `import`
needs them so that its final reset smudges pointers back into content.
Must not: write configuration, or know either migration.
"""

from __future__ import annotations

from gitmlx.context import RepoContext
from gitmlx.errors import MlxError

FILTER_KEYS = ("process", "clean", "smudge", "required")


def mlx_filter_config(ctx: RepoContext) -> dict[str, str]:
    """The effective `filter.mlx.*` (as `git mlx install` wrote it), or an error saying so."""
    values = {key: ctx.config.git(f"filter.mlx.{key}") for key in FILTER_KEYS}
    if not values["process"] and not values["smudge"]:
        raise MlxError("gitmlx's filters are not configured", "run 'git mlx install' first")
    return {k: v for k, v in values.items() if v}
