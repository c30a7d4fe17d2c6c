"""Pytest plugin: the sealed environment the tests that run git work in, and a repository
pair to start from.

Owns: isolating a test from the machine's git and gitmlx set-up. HOME, the global git
config and TMPDIR live in the test's tmp folder; system config is off; identity and dates
are pinned; no prompt can block; PATH starts with this interpreter's bin folder so git
runs the `git-mlx` under test. The global filter config is written once per session by
the real `git mlx install` and copied into each test's HOME. `sealed` is not autouse here:
the conftest of each folder whose tests run git makes it autouse there.
Must not: touch the user's HOME, config or network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.integrity import assert_no_crash_logs
from tests.support.repos import Repos, make_repo_with_bare_remote

BIN_DIR = Path(sys.executable).parent

_PINNED = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_AUTHOR_NAME": "gitmlx e2e",
    "GIT_AUTHOR_EMAIL": "e2e@example.invalid",
    "GIT_COMMITTER_NAME": "gitmlx e2e",
    "GIT_COMMITTER_EMAIL": "e2e@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_ADVICE": "0",
    "LC_ALL": "C.UTF-8",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def sealed_env(home: Path, tmp: Path, ceiling: Path) -> dict[str, str]:
    """This process's environment without any GIT_, AWS_ or XDG_ variable, plus the pinned
    ones, HOME and TMPDIR as given, and git kept below `ceiling`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "AWS_", "XDG_"))}
    env.update(_PINNED)
    env.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_STATE_HOME": str(tmp / "state"),  # gitmlx's crash logs (support/integrity)
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
            "GIT_CEILING_DIRECTORIES": str(ceiling),
            "TMPDIR": str(tmp),
            "PATH": f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return env


@pytest.fixture(scope="session")
def global_gitconfig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A global git config made by the real `git mlx install` in a sealed HOME."""
    root = tmp_path_factory.mktemp("template-home")
    home, tmp = root / "home", root / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = sealed_env(home, tmp, root)
    for key, value in (("init.defaultBranch", "main"), ("advice.detachedHead", "false")):
        subprocess.run(["git", "config", "--global", key, value], env=env, cwd=home, check=True)
    proc = subprocess.run(["git", "mlx", "install"], env=env, cwd=home, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    found = shutil.which("git-mlx", path=env["PATH"])
    assert found is not None and Path(found).parent == BIN_DIR, f"git-mlx resolves to {found}, not {BIN_DIR}"
    return home / ".gitconfig"


@dataclass(frozen=True)
class Sealed:
    """Where a sealed test lives, and the environment it runs in (also set in os.environ)."""

    root: Path  # the test's tmp_path: repositories go here
    home: Path
    tmp: Path
    env: dict[str, str]


@pytest.fixture
def sealed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, global_gitconfig: Path) -> Iterator[Sealed]:
    """The test's own HOME, global git config and TMPDIR, nothing else of the machine's;
    fails the test if gitmlx left a crash log behind."""
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    shutil.copy(global_gitconfig, home / ".gitconfig")
    env = sealed_env(home, tmp, tmp_path.parent)
    for key in list(os.environ):
        if key not in env:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    yield Sealed(tmp_path, home, tmp, env)
    assert_no_crash_logs(tmp)


@pytest.fixture
def repos(sealed: Sealed) -> Repos:
    """`remote.git` (bare) and `work` (origin = remote.git, '*.bin' tracked and committed)."""
    return make_repo_with_bare_remote(sealed.root)
