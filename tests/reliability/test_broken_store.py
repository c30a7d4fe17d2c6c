"""A local store folder that cannot be one (#21 item 13): a dangling symlink, a symlink
loop, a file. Every command that needs it says what is there and how to fix it, exit 1,
no internal error, and nothing else in the repository changes."""

from __future__ import annotations

import os

import pytest

from tests.support.commands import git, mlx
from tests.support.content import write_random
from tests.support.repos import Repos, local_store


@pytest.mark.parametrize("shape", ["dangling", "loop", "file"])
def test_a_store_that_is_not_a_folder_is_named_with_the_fix(repos: Repos, shape: str) -> None:
    store = local_store(repos.work)
    assert not os.path.lexists(store)
    if shape == "dangling":
        store.symlink_to(repos.work / "nowhere")
    elif shape == "loop":
        store.symlink_to(store)
    else:
        store.write_text("not a store")
    write_random(repos.work / "a.bin", 4096, "a")
    added = git("add", "a.bin", cwd=repos.work, check=False)
    assert added.returncode != 0
    assert f"the local store '{store}'" in added.stderr
    assert ("rm " if shape != "file" else "mv ") in added.stderr
    assert "internal error" not in added.output
    fsck = mlx("fsck", cwd=repos.work, check=False)
    assert fsck.returncode == 1 and f"the local store '{store}'" in fsck.stderr, fsck
