"""Git LFS for the migration tests: a HOME where git-lfs is installed (alone, or beside
gitmlx), a PATH that has everything the machine has except git-lfs, and a repository
made by git-lfs itself.

Owns: making those environments with the real `git lfs install`, skipping a test cleanly
where git-lfs is absent (failing it in CI, which must run it), and reading Git LFS's
object folder as git-lfs lays it out.
Must not: touch the user's HOME or the network, change the sealed HOME of the test, or
import gitmlx.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.commands import git
from tests.support.content import sha256_file, write_random

LFS_POINTER_START = b"version https://git-lfs.github.com/spec/v1\n"


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


@pytest.fixture
def lfs_env(sealed) -> dict[str, str]:
    """A second HOME where only Git LFS is installed (`git lfs install` writes its global
    filter.lfs.* there), so a repository is made, or cloned, exactly as a Git LFS user does."""
    return lfs_home(sealed.root / "lfs-home")


def contents(repo: Path, paths: list[str]) -> dict[str, str]:
    return {p: sha256_file(repo / p) for p in paths}


def make_lfs_repo(root: Path, env: dict[str, str]) -> tuple[Path, list[tuple[str, dict[str, str]]]]:
    """A Git LFS repository with two commits; returns it and (commit id, file hashes) per commit."""
    work = root / "work"
    git("init", "-q", work, cwd=root, env=env)
    (work / ".gitattributes").write_text("# text files\n*.txt text eol=lf\n")
    git("lfs", "track", "*.bin", cwd=work, env=env)
    (work / "models").mkdir()
    (work / "models" / ".gitattributes").write_text(
        '# checkpoints\n"*.pt" filter=lfs diff=lfs merge=lfs -text lockable\n'
    )
    write_random(work / "a.bin", 300 * 1024, "a1")
    write_random(work / "models" / "m.pt", 50 * 1024, "m1")
    (work / "notes.txt").write_text("first\n")
    commit_all_env(work, env, "v1")
    history = [(head(work), contents(work, ["a.bin", "models/m.pt", "notes.txt"]))]
    write_random(work / "a.bin", 310 * 1024, "a2")
    write_random(work / "b.bin", 20 * 1024, "b2")
    commit_all_env(work, env, "v2")
    history.append((head(work), contents(work, ["a.bin", "b.bin", "models/m.pt", "notes.txt"])))
    return work, history


def commit_all_env(repo: Path, env: dict[str, str], message: str) -> None:
    git("add", "-A", cwd=repo, env=env)
    git("commit", "-q", "-m", message, cwd=repo, env=env)


def head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def lfs_object_path(repo: Path, oid: str) -> Path:
    """Git LFS's layout: `.git/lfs/objects/OID[0:2]/OID[2:4]/OID`."""
    return repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid


def lfs_object_files(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / ".git" / "lfs" / "objects").glob("*/*/*") if p.is_file())
