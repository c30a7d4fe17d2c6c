"""Finding the repository from the top folder without `git rev-parse` (the filter's start):
git is the oracle, for every shape of `.git` a work tree can have."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitmlx.git import plumbing
from gitmlx.git.plumbing import repo_paths, repo_paths_at_top
from tests.support.commands import git


def same(top: Path) -> None:
    assert repo_paths_at_top(top) == repo_paths(top)


def test_a_plain_repository(sealed) -> None:
    repo = sealed.root / "plain"
    git("init", "-q", repo, cwd=sealed.root)
    same(repo)


def test_a_linked_worktree_and_a_submodule(sealed) -> None:
    main = sealed.root / "main"
    git("init", "-q", main, cwd=sealed.root)
    git("commit", "-q", "--allow-empty", "-m", "a", cwd=main)
    git("worktree", "add", "-q", sealed.root / "linked", cwd=main)
    same(sealed.root / "linked")
    sub = sealed.root / "sub"
    git("init", "-q", sub, cwd=sealed.root)
    git("commit", "-q", "--allow-empty", "-m", "a", cwd=sub)
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", sub, "mod", cwd=main)
    assert (main / "mod" / ".git").is_file()  # "gitdir: ../.git/modules/mod"
    same(main / "mod")


def test_a_top_reached_through_a_symlink(sealed) -> None:
    repo = sealed.root / "real"
    git("init", "-q", repo, cwd=sealed.root)
    (sealed.root / "link").symlink_to(repo)
    same(sealed.root / "link")


def test_relocating_variables_defer_to_git(sealed, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = sealed.root / "r"
    other = sealed.root / "other.git"
    git("init", "-q", repo, cwd=sealed.root)
    git("init", "-q", "--bare", other, cwd=sealed.root)
    monkeypatch.setenv("GIT_DIR", str(other))
    monkeypatch.setenv("GIT_WORK_TREE", str(repo))
    assert repo_paths_at_top(repo).git_dir == Path(os.path.realpath(other))


def test_a_config_read_started_ahead_answers_only_for_its_own_folder(sealed, monkeypatch) -> None:
    """The filter starts reading its folder's config before its modules load (cli); a
    read of another folder must not be given that answer, and the next read of the same
    folder takes it."""
    for name in ("a", "b"):
        git("init", "-q", sealed.root / name, cwd=sealed.root)
        git("config", "mlx.url", f"url-{name}", cwd=sealed.root / name)

    def url(folder: Path) -> list[str]:
        return [e.value for e in plumbing.read_config(cwd=folder) if e.key == "mlx.url"]

    monkeypatch.chdir(sealed.root / "a")
    plumbing.read_config_ahead()
    assert url(sealed.root / "b") == ["url-b"]
    plumbing.read_config_ahead()
    assert url(sealed.root / "a") == ["url-a"]
