"""The files git writes itself in a checkout (those this process does not place), checked
once git has moved on.

Owns: remembering the last file whose content git took, and putting its pointer back
when git left it cut short.
Why: git writes a filter's output straight to the file's final name (entry.c). When the
write fails (a full disk: "error: unable to write file") or git is killed during it, git
leaves a short file behind: wrong bytes under the right name, which the next `git add -A`
would commit. git writes each file before its next request to this filter (or before it
closes the pipe), so at that moment a file shorter than its object, holding a prefix of
it, is such a leftover: its pointer goes back in its place (what git holds for it) and
it is reported like a failed fetch.
Must not: touch a file that is anything but such a prefix, or print.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from gitmlx.checkout import filters, handoff
from gitmlx.format.pointer import Pointer

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from gitmlx.context import RepoContext


class GitWriteCheck:
    def __init__(self, ctx: RepoContext, error: Callable[[str, str | None], None] | None) -> None:
        self._ctx = ctx
        self._error = error
        self._last: tuple[str, Pointer] | None = None

    def watch(
        self, path: str, pointer: Pointer, body: Callable[[filters.Sink], None]
    ) -> Callable[[filters.Sink], None]:
        """`body`, remembering that git is about to write `path`."""

        def run(sink: filters.Sink) -> None:
            body(sink)
            self._last = (path, pointer)

        return run

    def check(self) -> None:
        """git has moved on: make sure it wrote the file it took last."""
        work_tree = self._ctx.paths.work_tree
        if self._last is None or work_tree is None:
            return
        path, pointer = self._last
        self._last = None
        try:
            st = os.lstat(os.path.join(work_tree, path))
            if not stat.S_ISREG(st.st_mode) or st.st_size >= pointer.size:
                return
            target = work_tree / path
            with open(target, "rb") as short:
                if not filters.holds_prefix(short, self._ctx.store, pointer):
                    return
        except OSError:
            return
        from gitmlx.checkout.objectfile import replace_with  # only a short file pays for it

        try:
            replace_with(target, pointer.encode())
            left = "put its pointer back"
        except OSError:
            try:
                os.unlink(target)
                left = "removed it"
            except OSError:
                left = "could not remove it either"
        if self._error is not None:
            self._error(
                f"git could not finish writing '{path}' ({st.st_size} of {pointer.size} bytes; "
                f"a full disk?): {left}, so no partial file stays",
                "free space, then run 'git mlx checkout' to restore it from the local store",
            )
        handoff.record_path(self._ctx.paths.git_dir, handoff.UNRESTORED_FILE, path)
