"""A repository whose committed `.mlxconfig` is built to hang or crash every clone.

Each clone runs with a deadline, so a regression fails the test rather than hanging it.
"""

from __future__ import annotations

import os

from tests.support.commands import git, mlx
from tests.support.content import write_random
from tests.support.repos import Repos, assert_clean_worktree, assert_content, commit_all


def test_a_backtracking_fetchexclude_does_not_hang_a_clone(repos: Repos, sealed) -> None:
    name = "a" * 70 + ".bin"
    sha = write_random(repos.work / name, 2048, "long")
    (repos.work / ".mlxconfig").write_text("[mlx]\n\tfetchexclude = " + "**a" * 10 + "**b\n")
    commit_all(repos.work, "hostile exclude")
    git("push", "-q", "origin", "HEAD:main", cwd=repos.work)

    copy = sealed.root / "copy"
    git("clone", "-q", repos.remote, copy, cwd=sealed.root, timeout=60)
    assert_content(copy, name, sha)  # the pattern does not match: the file is fetched
    assert_clean_worktree(copy)


def test_a_file_name_that_is_not_utf8_clones_and_pulls(repos: Repos, sealed) -> None:
    name = os.fsdecode(b"bad\xff.bin")  # surrogate-escaped: the bytes git has
    sha = write_random(repos.work / name, 4096, "bad")
    commit_all(repos.work, "odd name")
    git("push", "-q", "origin", "HEAD:main", cwd=repos.work)

    copy = sealed.root / "copy"
    git("clone", "-q", repos.remote, copy, cwd=sealed.root, timeout=120)
    assert_content(copy, name, sha)
    assert_clean_worktree(copy)

    lazy = sealed.root / "lazy"
    git("clone", "-q", repos.remote, lazy, cwd=sealed.root, env={"GIT_MLX_SKIP_SMUDGE": "1"}, timeout=120)
    mlx("pull", cwd=lazy)
    assert_content(lazy, name, sha)
    assert_clean_worktree(lazy)
