"""`git mlx install` / `uninstall`: filter configuration and hooks, with foreign hooks kept."""

from __future__ import annotations

from pathlib import Path

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import write_random
from tests.support.repos import HOOK_NAMES, Repos, assert_remote_object, commit_all, hooks_dir, remote_ref

FILTER_KEYS = {
    "filter.mlx.process": "git-mlx filter-process",
    "filter.mlx.clean": "git-mlx clean -- %f",
    "filter.mlx.smudge": "git-mlx smudge -- %f",
    "filter.mlx.required": "true",
}


def config_values(repo: Path, scope: str, key: str) -> list[str]:
    out = git("config", f"--{scope}", "--get-all", key, cwd=repo, check=False).stdout
    return out.splitlines()


def foreign_hook(path: Path, marker: Path, exit_status: int = 0) -> str:
    """A user's own hook: records its arguments and stdin, then exits with `exit_status`."""
    text = f'#!/bin/sh\necho "args: $*" > "{marker}"\ncat >> "{marker}"\nexit {exit_status}\n'
    path.write_text(text)
    path.chmod(0o755)
    return text


def fresh_repo(root: Path) -> Path:
    repo = root / "fresh"
    git("init", "-q", repo, cwd=root)
    for sample in hooks_dir(repo).glob("*.sample"):
        sample.unlink()
    return repo


def test_global_install_writes_the_four_filter_keys(sealed) -> None:
    for key, value in FILTER_KEYS.items():
        assert config_values(sealed.home, "global", key) == [value]


def test_install_in_a_repository_configures_filters_and_installs_executable_hooks(sealed) -> None:
    repo = fresh_repo(sealed.root)
    result = mlx("install", "--local", cwd=repo)

    assert_no_traceback(result)
    for key, value in FILTER_KEYS.items():
        assert config_values(repo, "local", key) == [value]
    for name in HOOK_NAMES:
        hook = hooks_dir(repo) / name
        assert "gitmlx-hook" in hook.read_text()
        assert hook.stat().st_mode & 0o111, f"{name} is not executable"


def test_install_twice_changes_nothing(sealed) -> None:
    repo = fresh_repo(sealed.root)
    mlx("install", cwd=repo)
    before = {name: (hooks_dir(repo) / name).read_text() for name in HOOK_NAMES}
    again = mlx("install", cwd=repo)

    assert "installed" not in again.stdout
    assert {name: (hooks_dir(repo) / name).read_text() for name in HOOK_NAMES} == before
    for key, value in FILTER_KEYS.items():
        assert config_values(repo, "global", key) == [value]


def test_install_refuses_a_foreign_hook_without_force_and_leaves_it_alone(sealed) -> None:
    repo = fresh_repo(sealed.root)
    text = foreign_hook(hooks_dir(repo) / "pre-push", sealed.tmp / "marker")

    result = mlx("install", cwd=repo, check=False)

    assert_no_traceback(result)
    assert result.returncode == 1
    assert "pre-push" in result.stderr and "--force" in result.stderr
    assert (hooks_dir(repo) / "pre-push").read_text() == text
    assert not (hooks_dir(repo) / "pre-push.pre-mlx").exists()
    for name in set(HOOK_NAMES) - {"pre-push"}:
        assert "gitmlx-hook" in (hooks_dir(repo) / name).read_text()


def test_install_force_chains_a_foreign_pre_push_hook_that_still_runs(repos: Repos, sealed) -> None:
    marker = sealed.tmp / "marker"
    text = foreign_hook(hooks_dir(repos.work) / "pre-push", marker)
    forced = mlx("install", "--force", cwd=repos.work)
    assert (hooks_dir(repos.work) / "pre-push.pre-mlx").read_text() == text
    assert "gitmlx-hook" in (hooks_dir(repos.work) / "pre-push").read_text()

    sha = write_random(repos.work / "a.bin", 4096, "a")
    commit_all(repos.work)
    pushed = git("push", "origin", "main", cwd=repos.work)

    assert_no_traceback(forced, pushed)
    recorded = marker.read_text()
    assert recorded.startswith(f"args: origin {repos.remote}")
    assert "refs/heads/main" in recorded, "the chained hook did not get git's ref lines on stdin"
    assert_remote_object(repos.remote, sha)
    assert remote_ref(repos.remote) == git("rev-parse", "HEAD", cwd=repos.work).stdout.strip()


def test_chained_foreign_hook_can_still_refuse_a_push(repos: Repos, sealed) -> None:
    foreign_hook(hooks_dir(repos.work) / "pre-push", sealed.tmp / "marker", exit_status=1)
    mlx("install", "--force", cwd=repos.work)
    write_random(repos.work / "a.bin", 4096, "a")
    commit_all(repos.work)

    result = git("push", "origin", "main", cwd=repos.work, check=False)

    assert result.returncode != 0
    assert remote_ref(repos.remote) is None


def test_uninstall_restores_the_chained_hook_and_removes_the_filters(repos: Repos, sealed) -> None:
    text = foreign_hook(hooks_dir(repos.work) / "pre-push", sealed.tmp / "marker")
    mlx("install", "--force", cwd=repos.work)

    result = mlx("uninstall", cwd=repos.work)

    assert_no_traceback(result)
    assert (hooks_dir(repos.work) / "pre-push").read_text() == text
    assert not (hooks_dir(repos.work) / "pre-push.pre-mlx").exists()
    for name in set(HOOK_NAMES) - {"pre-push"}:
        assert not (hooks_dir(repos.work) / name).exists()
    for key in FILTER_KEYS:
        assert config_values(repos.work, "global", key) == []


def test_uninstall_leaves_a_foreign_hook_it_never_chained(sealed) -> None:
    repo = fresh_repo(sealed.root)
    text = foreign_hook(hooks_dir(repo) / "post-commit", sealed.tmp / "marker")
    mlx("install", cwd=repo, check=False)  # refused for post-commit, the others installed

    mlx("uninstall", cwd=repo)

    assert (hooks_dir(repo) / "post-commit").read_text() == text
    assert sorted(p.name for p in hooks_dir(repo).iterdir()) == ["post-commit"]
