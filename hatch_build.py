"""Build hook: writes the git-mlx(1) manual page into the wheel, as share/man/man1/git-mlx.1.

The page is rendered from the command line's own help (gitmlx.cli.man_page), so it cannot
drift from `git mlx help`. git answers `git mlx --help` by running `man git-mlx`; a wheel
installed into a prefix whose bin/ is on PATH (a venv, `pipx`, `pip install --user`) puts
the page where man looks: ../share/man beside each PATH folder.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class ManPageHook(BuildHookInterface):
    PLUGIN_NAME = "manpage"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        sys.path.insert(0, self.root)
        try:
            from gitmlx.cli import man_page

            text = man_page()
        finally:
            sys.path.remove(self.root)
        self._folder = tempfile.mkdtemp(prefix="gitmlx-man-")
        out = Path(self._folder) / "git-mlx.1"
        out.write_text(text, encoding="utf-8")
        build_data["shared_data"][str(out)] = "share/man/man1/git-mlx.1"

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        folder = getattr(self, "_folder", None)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
