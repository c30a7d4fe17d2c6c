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

from tests.support.probes import FILTER_LAZY, STARTUP_HEAVY


def loaded(modules: str, names: tuple[str, ...], cwd) -> list[str]:
    """Which of `names` a fresh interpreter holds after importing `modules`."""
    probe = f"import sys, {modules}\nprint(' '.join(m for m in {names!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=cwd)
    return out.stdout.split()


@pytest.mark.parametrize("command", ["filter_process", "clean", "smudge", "hook_events", "textconv"])
def test_a_command_git_runs_imports_nothing_heavy(command: str, tmp_path) -> None:
    assert loaded(f"gitmlx.cli, gitmlx.commands.{command}", STARTUP_HEAVY, tmp_path) == []


def test_the_filter_waits_for_its_first_request_before_the_rest(tmp_path) -> None:
    """What a filter process imports before git's first request is what every `git add`
    waits for: nothing a request loads when it needs it."""
    assert loaded("gitmlx.cli, gitmlx.commands.filter_process", FILTER_LAZY, tmp_path) == []


def test_the_pre_push_hook_is_dispatched_without_click_or_checkout_code(tmp_path) -> None:
    """The hook runs on every `git push`: it parses its two arguments itself, and loads
    what uploads need, not what checkouts, gc or the Git LFS migration need."""
    probe = (
        "import sys\nfrom gitmlx import cli\n"
        "assert cli._fast_path(['pre-push', 'origin', 'file:///x.git']) is not None\n"
        "assert cli._fast_path(['pre-push', '--help']) is None\n"
        "names = ('click', 'gitmlx.checkout.worktree', 'gitmlx.maintenance.gc', 'gitmlx.migrate.from_lfs')\n"
        "print(' '.join(m for m in names if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == []
