"""Pytest fixture: a HOME where only Git LFS is set up, as a Git LFS user's machine is.

Owns: finding git-lfs (a skip here, a failure in CI, which must run these tests) and a
second HOME whose global config is what `git lfs install` writes and nothing of gitmlx's.
Must not: touch the user's HOME or the network.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support.commands import git


@pytest.fixture
def lfs_env(sealed) -> dict[str, str]:
    """A second HOME where only Git LFS is installed (`git lfs install` writes its global
    filter.lfs.* there), so a repository is made, or cloned, exactly as a Git LFS user does."""
    if shutil.which("git-lfs") is None:
        if os.environ.get("CI"):
            pytest.fail("git-lfs is not installed, and CI must run the migration tests (.ci/run installs it)")
        pytest.skip("git-lfs is not installed here (apt-get install git-lfs); CI runs this test")
    home = sealed.root / "lfs-home"
    home.mkdir()
    env = {"HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"), "XDG_CONFIG_HOME": str(home / ".config")}
    for key, value in (("init.defaultBranch", "main"), ("advice.detachedHead", "false")):
        git("config", "--global", key, value, cwd=home, env=env)
    git("lfs", "install", cwd=home, env=env)
    assert "git-lfs" in (home / ".gitconfig").read_text()
    return env
