"""What one filter invocation knows: its repository, store, fetch selection and
(once a missing object needs it) its remote.

Owns: the policy around smudge — skip-smudge, mlx.fetchinclude / mlx.fetchexclude,
fetching a missing object, and what happens when that fails: the file is checked out as
its pointer, one `error:` line names it, and it is recorded so the post-checkout /
post-merge hook can fail the command and say how to finish (`git mlx pull`).

Why not answer `status=error`: with `filter.mlx.required`, git dies at the first failed
smudge ("fatal: <path>: smudge filter mlx failed"), leaving a half-switched work tree and
every later file unwritten. A pointer is what git itself holds for the file, so the work
tree stays consistent and `git status` clean.
Shared by the long-running filter and the one-shot `clean` / `smudge` commands.
Must not: print (warnings go to the callback it is given).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from gitmlx import filters, patterns
from gitmlx.config import split_patterns
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError
from gitmlx.pointer import Pointer
from gitmlx.remotes.base import Remote
from gitmlx.sizes import human_size


class FilterSession:
    def __init__(
        self,
        skip_smudge: bool = False,
        warn: Callable[[str], None] | None = None,
        error: Callable[[str, str | None], None] | None = None,
    ) -> None:
        self.ctx = RepoContext()
        self._skip = skip_smudge
        self._warn = warn
        self._error = error
        self._remote: Remote | None = None
        self._selection: tuple[list[str], list[str]] | None = None

    @property
    def skip_smudge(self) -> bool:
        return self._skip or self.ctx.config.flag("mlx.skipsmudge")

    def wanted(self, path: str) -> bool:
        """mlx.fetchinclude / mlx.fetchexclude: unwanted files stay pointers."""
        if self._selection is None:
            config = self.ctx.config
            self._selection = (
                split_patterns(config.value("mlx.fetchinclude")),
                split_patterns(config.value("mlx.fetchexclude")),
            )
        return patterns.selected(path, *self._selection)

    def fetch(self, pointer: Pointer) -> None:
        from gitmlx import transfer  # only a missing object pays for the transfer code

        if self._remote is None:
            self._remote = self.ctx.open_remote()
        try:
            transfer.fetch_one(self.ctx.store, self._remote, pointer)
        except MlxError as exc:
            raise MlxError(
                f"object {pointer.short_oid} ({human_size(pointer.size)}): {exc.message}",
                exc.hint or "fix the artifact remote, then run 'git mlx pull'",
            ) from exc

    def clean(self, source: filters.Source) -> bytes:
        return filters.clean(source, self.ctx.store)

    def smudge(self, source: filters.Source, path: str) -> Callable[[filters.Sink], None]:
        restore = not self.skip_smudge and self.wanted(path)
        fetch = self.fetch if restore else None

        def unavailable(pointer: Pointer, exc: MlxError) -> None:
            if self._error is not None:
                self._error(f"cannot restore '{path}', left as a pointer: {exc.message}", exc.hint)
            record_unrestored(self.ctx.paths.git_dir, path)

        return filters.prepare_smudge(source, self.ctx.store, fetch, path, self._warn, unavailable)


#: In the per-worktree git dir: paths left as pointers by a failed fetch during smudge.
UNRESTORED_FILE = "mlx-unrestored"


def record_unrestored(git_dir: Path, path: str) -> None:
    """Append `path` (one short O_APPEND write, safe across concurrent filters)."""
    fd = os.open(git_dir / UNRESTORED_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, path.encode("utf-8", "surrogateescape") + b"\0")
    finally:
        os.close(fd)


def take_unrestored(git_dir: Path) -> list[str]:
    """The recorded paths, clearing the record."""
    path = git_dir / UNRESTORED_FILE
    try:
        data = path.read_bytes()
        path.unlink()
    except FileNotFoundError:
        return []
    return sorted({p.decode("utf-8", "surrogateescape") for p in data.split(b"\0") if p})
