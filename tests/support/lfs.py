"""Git LFS for the migration tests: a HOME where git-lfs is installed (alone, or beside
gitmlx), and a PATH that has everything the machine has except git-lfs.

Owns: making those environments with the real `git lfs install`, and skipping a test
cleanly where git-lfs is absent (failing it in CI, which must run it).
Must not: import gitmlx, or change the sealed HOME of the test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.commands import git


def require_git_lfs() -> None:
    if shutil.which("git-lfs") is None:
        if os.environ.get("CI"):
            pytest.fail("git-lfs is not installed, and CI must run the migration tests (.ci/run installs it)")
        pytest.skip("git-lfs is not installed here (apt-get install git-lfs); CI runs this test")


def lfs_home(home: Path, gitconfig: Path | None = None) -> dict[str, str]:
    """Variables for a HOME at `home` where `git lfs install` ran; with `gitconfig` (the
    sealed HOME's, which has gitmlx's filters) copied in first: a machine with both tools."""
    require_git_lfs()
    home.mkdir()
    env = {"HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"), "XDG_CONFIG_HOME": str(home / ".config")}
    if gitconfig is not None:
        shutil.copy(gitconfig, home / ".gitconfig")
    for key, value in (("init.defaultBranch", "main"), ("advice.detachedHead", "false")):
        git("config", "--global", key, value, cwd=home, env=env)
    git("lfs", "install", cwd=home, env=env)
    assert "git-lfs" in (home / ".gitconfig").read_text()
    return env


def path_without_git_lfs(folder: Path) -> str:
    """`PATH` with git-lfs taken out: every other program of its folders is linked into
    `folder` (git-lfs sits beside git in /usr/bin, so the folder cannot simply be dropped)."""
    folder.mkdir()
    kept: list[str] = []
    for entry in os.environ["PATH"].split(os.pathsep):
        directory = Path(entry)
        if not (directory / "git-lfs").exists():
            kept.append(entry)
            continue
        for program in directory.iterdir():
            link = folder / program.name
            if not program.name.startswith("git-lfs") and not link.exists():
                link.symlink_to(program)
    path = os.pathsep.join([*kept, str(folder)])
    assert shutil.which("git-lfs", path=path) is None
    return path
