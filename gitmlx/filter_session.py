"""What one filter invocation knows: its repository, store, fetch selection and
(once a missing object needs it) its remote.

Owns: the policy around smudge — skip-smudge, mlx.fetchinclude / mlx.fetchexclude, and
fetching a missing object with a message that names the file's object and the fix.
Shared by the long-running filter and the one-shot `clean` / `smudge` commands.
Must not: print (warnings go to the callback it is given).
"""

from __future__ import annotations

from collections.abc import Callable

from gitmlx import filters, patterns
from gitmlx.config import split_patterns
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError
from gitmlx.pointer import Pointer
from gitmlx.remotes.base import Remote
from gitmlx.sizes import human_size


class FilterSession:
    def __init__(self, skip_smudge: bool = False, warn: Callable[[str], None] | None = None) -> None:
        self.ctx = RepoContext()
        self._skip = skip_smudge
        self._warn = warn
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
                f"object {pointer.short_oid} ({human_size(pointer.size)}) could not be "
                f"fetched from '{self._remote.display_url}': {exc.message}",
                exc.hint
                or "push it from a clone that has it, then run 'git mlx pull'; "
                "or set GIT_MLX_SKIP_SMUDGE=1 to check out pointers",
            ) from exc

    def clean(self, source: filters.Source) -> bytes:
        return filters.clean(source, self.ctx.store)

    def smudge(self, source: filters.Source, path: str) -> Callable[[filters.Sink], None]:
        restore = not self.skip_smudge and self.wanted(path)
        fetch = self.fetch if restore else None
        return filters.prepare_smudge(source, self.ctx.store, fetch, path, self._warn)
