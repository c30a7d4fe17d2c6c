"""What the commands git starts most often import: nothing heavy before it is needed.

git starts `git-mlx filter-process` for every command that cleans or smudges, and runs the
hooks on every checkout, commit and merge, so their imports are paid again and again
(bench/startup.py measures them). Each module listed here stays out of their start-up; a
change that pulls one in fails here rather than showing only as a slower `git add`.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.probes import STARTUP_HEAVY


@pytest.mark.parametrize("command", ["filter_process", "clean", "smudge", "hook_events", "textconv"])
def test_a_command_git_runs_imports_nothing_heavy(command: str, tmp_path) -> None:
    probe = (
        f"import sys, gitmlx.cli, gitmlx.commands.{command}\n"
        f"print(' '.join(m for m in {STARTUP_HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == []
