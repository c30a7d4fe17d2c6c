"""What the filter asks git before it answers: every git process it starts is time a
`git add` waits for. git's own trace (GIT_TRACE) is the witness."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support.commands import git
from tests.support.content import write_random
from tests.support.probes import FILTER_LAZY, STARTUP_HEAVY, imported_modules
from tests.support.repos import Repos, assert_clean_worktree, commit_all
from tests.support.syscalls import gitmlx_calls, strace_works


def filter_git_calls(repo: Path, sealed, *args: str) -> list[str]:
    """The git commands run while `git *args` ran, other than the top-level one."""
    trace = sealed.tmp / "trace.log"
    trace.unlink(missing_ok=True)
    git(*args, cwd=repo, env={"GIT_TRACE": str(trace)})
    calls = re.findall(r"trace: built-in: git (.*)", trace.read_text())
    return calls[1:]


def test_git_add_of_a_new_file_reads_config_once_and_nothing_else(repos: Repos, sealed) -> None:
    write_random(repos.work / "new.bin", 4096, "new")
    calls = filter_git_calls(repos.work, sealed, "add", "new.bin")
    assert calls == ["config --show-scope --list -z"], calls


def test_commit_of_an_edited_file_reads_its_pointer_without_git(repos: Repos, sealed) -> None:
    write_random(repos.work / "m.bin", 4096, "one")
    commit_all(repos.work, "one")
    write_random(repos.work / "m.bin", 4096, "two")
    calls = filter_git_calls(repos.work, sealed, "commit", "-q", "-a", "-m", "two")
    assert not [c for c in calls if c.startswith(("ls-files", "cat-file", "rev-parse"))], calls
    assert_clean_worktree(repos.work)


def test_a_packed_pointer_blob_is_still_found(repos: Repos, sealed) -> None:
    """After `git gc` the pointer blob is in a pack: the filter asks git, and an unchanged
    file touched on disk still cleans to the same pointer (no new object, status clean)."""
    write_random(repos.work / "m.bin", 4096, "one")
    commit_all(repos.work, "one")
    git("gc", "-q", cwd=repos.work)
    assert not list((repos.work / ".git" / "objects").glob("[0-9a-f][0-9a-f]/*"))
    (repos.work / "m.bin").touch()
    calls = filter_git_calls(repos.work, sealed, "add", "m.bin")
    assert any(c.startswith("ls-files") for c in calls), calls
    assert_clean_worktree(repos.work)


def test_add_and_commit_never_import_the_heavy_modules(repos: Repos, sealed) -> None:
    """Through the whole life of the filter (first answer, index refresh, hooks, the
    pack's seal at exit), not only its start: every import is reported on git's stderr."""
    write_random(repos.work / "h.bin", 4096, "one")
    added = git("add", "h.bin", cwd=repos.work, env={"PYTHONPROFILEIMPORTTIME": "1"})
    write_random(repos.work / "h.bin", 4096, "two")
    committed = git("commit", "-q", "-a", "-m", "h", cwd=repos.work, env={"PYTHONPROFILEIMPORTTIME": "1"})
    for result in (added, committed):
        seen = imported_modules(result.stderr)
        assert "gitmlx.commands.filter_process" in seen
        assert sorted(seen.intersection(STARTUP_HEAVY)) == []


def test_git_add_of_a_new_file_loads_only_what_a_clean_needs(repos: Repos, sealed) -> None:
    """The config read spawns git without `subprocess`; one small file is hashed without
    OpenSSL (`osutil.digests`), and no queue or pattern matcher is loaded. The hooks
    module comes when git closes the filter (it checks that the hooks are there)."""
    write_random(repos.work / "n.bin", 4096, "new")
    added = git("add", "n.bin", cwd=repos.work, env={"PYTHONPROFILEIMPORTTIME": "1"})
    seen = imported_modules(added.stderr)
    assert "gitmlx.commands.filter_process" in seen
    assert sorted(seen.intersection(FILTER_LAZY)) == ["gitmlx.git.hooks"]


@pytest.mark.skipif(not strace_works(), reason="strace is missing or not allowed to trace here")
def test_git_add_of_one_small_file_syncs_that_file_not_the_file_system(repos: Repos, sealed) -> None:
    """Its object is stored loose and fsynced as the pack it replaces would be: a
    syncfs(2) would make every `git add` wait for whatever else was written there."""
    sha = write_random(repos.work / "one.bin", 4096, "one")
    calls = gitmlx_calls(["git", "add", "one.bin"], repos.work, os.environ, sealed.tmp / "strace")
    assert calls["syncfs"] == 0, dict(calls)
    assert (repos.work / ".git" / "mlx" / "objects" / sha[:2] / sha[2:4] / sha).is_file()
