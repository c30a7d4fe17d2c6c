"""Objects above mlx.smudgelimit: smudge checks out the pointer, the post-checkout hook
writes the content, and git never holds the file in memory (issue: files larger than memory)."""

from __future__ import annotations

import os
import resource
import subprocess

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import write_random
from tests.support.repos import Repos, assert_clean_worktree, assert_content, clone, commit_all, hooks_dir

MIB = 1024 * 1024


def test_clone_above_smudge_limit_places_content_without_git_holding_it(repos: Repos, sealed) -> None:
    sha = write_random(repos.work / "big.bin", 64 * MIB, "big")
    small = write_random(repos.work / "small.bin", 1000, "small")
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"

    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(
        ["git", "-c", "mlx.smudgelimit=8MiB", "clone", "-q", str(repos.remote), str(dest)],
        capture_output=True,
        text=True,
    )
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss

    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_content(dest, "big.bin", sha)
    assert_content(dest, "small.bin", small)
    assert_clean_worktree(dest)
    # Every process of the clone (git, the filter, the hook) stayed far below the file's size.
    if peak_kib > before:  # ru_maxrss only ever grows: a smaller peak was hidden by earlier work
        assert peak_kib < 48 * 1024, f"a process of the clone peaked at {peak_kib} KiB"


def test_untouched_placed_file_is_recognised_and_an_edit_is_not(repos: Repos, sealed) -> None:
    write_random(repos.work / "big.bin", 16 * MIB, "big")
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    assert_no_traceback(clone(repos.remote, dest, env={"GIT_MLX_SMUDGE_LIMIT": "1MiB"}))
    assert (dest / ".git" / "mlx-statcache.sqlite").exists(), "placement did not record the file"

    with open(dest / "big.bin", "r+b") as f:  # same size, one byte different
        f.seek(5 * MIB)
        byte = f.read(1)
        f.seek(5 * MIB)
        f.write(bytes([byte[0] ^ 1]))
    status = git("status", "--porcelain", cwd=dest).stdout
    assert status.strip() == "M big.bin", status


def test_the_first_status_after_a_clone_reads_no_file(repos: Repos, sealed) -> None:
    """git takes a file not older than its index (to the second, for a git without
    USE_NSEC) for racily clean and pipes it through the clean filter again; placed files
    are dated a second back, and their stat data is in the index, so status reads none."""
    for i in range(3):
        write_random(repos.work / f"m{i}.bin", 2 * MIB, f"m{i}")
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest, trace = sealed.root / "clone", sealed.tmp / "status.packets"
    assert_no_traceback(clone(repos.remote, dest))

    status = git("status", "--porcelain", cwd=dest, env={"GIT_TRACE_PACKET": str(trace)})

    assert status.stdout == ""
    cleaned = trace.read_text(errors="replace").count("command=clean") if trace.exists() else 0
    assert cleaned == 0, f"git status ran the clean filter {cleaned} times"
    # The placements' spare file (swapped with each pointer) is gone with the checkout.
    assert [n for n in os.listdir(dest / ".git") if n.startswith("mlx-spare.")] == []
    # An edit within the same second is still seen.
    (dest / "m0.bin").write_bytes(b"edited")
    assert git("status", "--porcelain", cwd=dest).stdout == " M m0.bin\n"


def test_commands_without_hooks_get_their_content_when_git_closes_the_filter(repos: Repos, sealed) -> None:
    v1 = write_random(repos.work / "big.bin", 4 * MIB, "v1")
    commit_all(repos.work, "v1")
    v2 = write_random(repos.work / "big.bin", 4 * MIB, "v2")
    commit_all(repos.work, "v2")
    git("config", "mlx.smudgelimit", "1MiB", cwd=repos.work)
    git("branch", "tip", cwd=repos.work)

    git("reset", "-q", "--hard", "HEAD~1", cwd=repos.work)  # runs no post-checkout hook
    assert_content(repos.work, "big.bin", v1)
    assert_clean_worktree(repos.work)

    (repos.work / "big.bin").write_bytes(b"local edit")
    git("stash", "-q", cwd=repos.work)  # no hook either
    assert_content(repos.work, "big.bin", v1)
    assert_clean_worktree(repos.work)
    git("stash", "pop", "-q", cwd=repos.work)
    assert (repos.work / "big.bin").read_bytes() == b"local edit"
    # ...and still not staged: refreshing the index after the pop's checkout must leave the
    # entry git changed since alone (`git update-index big.bin` would stage the edit).
    assert git("status", "--porcelain", cwd=repos.work).stdout == " M big.bin\n"
    git("checkout", "-q", "--", "big.bin", cwd=repos.work)
    assert_content(repos.work, "big.bin", v1)

    git("checkout", "-q", "tip", cwd=repos.work)  # the post-checkout hook places it
    assert_content(repos.work, "big.bin", v2)
    assert_clean_worktree(repos.work)
    assert not (repos.work / ".git" / "mlx-deferred").exists()


def test_a_file_left_as_a_pointer_is_written_by_git_mlx_checkout(repos: Repos, sealed) -> None:
    sha = write_random(repos.work / "big.bin", 4 * MIB, "v1")
    commit_all(repos.work, "v1")
    git("config", "mlx.smudgelimit", "1MiB", cwd=repos.work)
    # What a git killed before its hook ran and before it closed the filter leaves behind.
    pointer = git("cat-file", "blob", "HEAD:big.bin", cwd=repos.work).stdout
    (repos.work / "big.bin").write_text(pointer)
    git("update-index", "big.bin", cwd=repos.work)
    assert (repos.work / "big.bin").stat().st_size < 1024
    assert_clean_worktree(repos.work)

    result = mlx("checkout", cwd=repos.work)

    assert_no_traceback(result)
    assert_content(repos.work, "big.bin", sha)
    assert_clean_worktree(repos.work)


def test_the_filter_writes_large_files_itself_during_checkouts_only(repos: Repos, sealed) -> None:
    """mlx.directplace: from that size up, a checkout gets the file from gitmlx, not
    through git's memory; `git cat-file --filters`, `git archive`, textconv (no work tree
    written) still get it from the filter."""
    sha = write_random(repos.work / "mid.bin", 3 * MIB, "mid")
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = repos.work.parent / "direct"
    assert_no_traceback(clone(repos.remote, dest, env={"GIT_MLX_DIRECT_PLACE": "2MiB"}))
    assert_content(dest, "mid.bin", sha)
    assert_clean_worktree(dest)
    assert (dest / ".git" / "mlx-statcache.sqlite").exists(), "gitmlx did not place the file"
    shown = subprocess.run(
        ["git", "-c", "mlx.directplace=2MiB", "cat-file", "--filters", "HEAD:mid.bin"], cwd=dest, capture_output=True
    )
    assert shown.returncode == 0 and len(shown.stdout) == 3 * MIB


def test_a_chained_post_checkout_hook_sees_the_placed_content(repos: Repos, sealed) -> None:
    sha = write_random(repos.work / "big.bin", 3 * MIB, "big")
    commit_all(repos.work, "big")
    git("branch", "with-big", cwd=repos.work)
    git("rm", "-q", "big.bin", cwd=repos.work)
    commit_all(repos.work, "without")
    seen = repos.work.parent / "seen-by-user-hook"
    user_hook = hooks_dir(repos.work) / "post-checkout.pre-mlx"  # a hook gitmlx chained
    user_hook.write_text(f"#!/bin/sh\nwc -c < big.bin > '{seen}'\n")
    user_hook.chmod(0o755)

    git("-c", "mlx.directplace=1MiB", "checkout", "-q", "with-big", cwd=repos.work)

    assert_content(repos.work, "big.bin", sha)
    assert seen.read_text().strip() == str(3 * MIB)
