"""git commands that run several checkouts against one in-memory index (#21 item 3): the
sequencer (rebase, cherry-pick and revert of a range), am, bisect, and a merge with a
conflict in another file, over commits that change an artifact, in the default
configuration. Each must succeed, leave the right bytes and a clean status."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitmlx.checkout.gitparent import git_command, quiet_options
from tests.support.commands import git
from tests.support.content import sha256_file, write_random
from tests.support.repos import Repos, assert_clean_worktree, assert_content, commit_all


def history(repo: Path) -> dict[str, str]:
    """main: A (artifact v1), D (other file); feature from A: B (v2), C (v3)."""
    shas = {"v1": write_random(repo / "m.bin", 200_000, "v1")}
    commit_all(repo, "A")
    git("branch", "feature", cwd=repo)
    (repo / "other.txt").write_text("d\n")
    commit_all(repo, "D")
    git("checkout", "-q", "feature", cwd=repo)
    shas["v2"] = write_random(repo / "m.bin", 200_000, "v2")
    commit_all(repo, "B")
    shas["v3"] = write_random(repo / "m.bin", 200_000, "v3")
    commit_all(repo, "C")
    return shas


def test_rebase_over_artifact_commits(repos: Repos) -> None:
    shas = history(repos.work)
    git("rebase", "main", cwd=repos.work)
    assert_content(repos.work, "m.bin", shas["v3"])
    assert (repos.work / "other.txt").exists()
    assert_clean_worktree(repos.work)


def test_cherry_pick_and_revert_of_a_range(repos: Repos) -> None:
    shas = history(repos.work)
    git("checkout", "-q", "main", cwd=repos.work)
    git("cherry-pick", "feature~1", "feature", cwd=repos.work)
    assert_content(repos.work, "m.bin", shas["v3"])
    assert_clean_worktree(repos.work)
    git("revert", "--no-edit", "HEAD", "HEAD~1", cwd=repos.work)
    assert_content(repos.work, "m.bin", shas["v1"])
    assert_clean_worktree(repos.work)


def test_am_of_artifact_patches(repos: Repos, sealed) -> None:
    shas = history(repos.work)
    patches = sealed.root / "patches"
    git("format-patch", "-q", "-o", patches, "main..feature", cwd=repos.work)
    git("checkout", "-q", "main", cwd=repos.work)
    git("am", "-q", *sorted(str(p) for p in patches.iterdir()), cwd=repos.work)
    assert_content(repos.work, "m.bin", shas["v3"])
    assert_clean_worktree(repos.work)


def test_bisect_over_artifact_commits(repos: Repos) -> None:
    shas = history(repos.work)
    git("bisect", "start", "feature", "main~1", cwd=repos.work)
    seen = sha256_file(repos.work / "m.bin")
    assert seen in (shas["v1"], shas["v2"], shas["v3"])
    assert_clean_worktree(repos.work)
    git("bisect", "reset", cwd=repos.work)
    assert_content(repos.work, "m.bin", shas["v3"])


def test_merge_with_a_conflict_in_another_file(repos: Repos) -> None:
    shas = history(repos.work)
    (repos.work / "other.txt").write_text("feature side\n")
    commit_all(repos.work, "E")
    git("checkout", "-q", "main", cwd=repos.work)
    merged = git("merge", "-q", "feature", cwd=repos.work, check=False)
    assert merged.returncode != 0  # other.txt conflicts
    assert_content(repos.work, "m.bin", shas["v3"])
    (repos.work / "other.txt").write_text("resolved\n")
    git("add", "other.txt", cwd=repos.work)
    git("commit", "-q", "--no-edit", cwd=repos.work)
    assert_clean_worktree(repos.work)


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        ([b"git", b"rebase", b"main"], b"rebase"),
        ([b"git", b"-C", b"x", b"-c", b"a=b", b"cherry-pick", b"A"], b"cherry-pick"),
        ([b"/usr/bin/git", b"--no-pager", b"revert", b"HEAD"], b"revert"),
        ([b"git"], None),
    ],
)
def test_the_git_command_is_read_past_global_options(argv: list[bytes], command: bytes | None) -> None:
    assert git_command(argv) == command


@pytest.mark.parametrize(
    ("argv", "quiet"),
    [
        ([b"git", b"clone", b"-q", b"url"], True),
        ([b"git", b"-c", b"a=b", b"checkout", b"--quiet", b"main"], True),
        ([b"git", b"-C", b"-q", b"checkout", b"main"], False),  # -q is -C's folder
        ([b"git", b"checkout", b"--", b"-q"], False),  # a path named -q
        ([b"git", b"pull", b"-qr"], True),
        ([b"git", b"clone", b"url"], False),
    ],
)
def test_quiet_is_read_from_the_subcommands_options(argv: list[bytes], quiet: bool) -> None:
    assert quiet_options(argv) is quiet
