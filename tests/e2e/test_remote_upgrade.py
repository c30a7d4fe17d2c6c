"""`git mlx remote upgrade`: a format 1 remote (a marker written before the first push, as
a previous gitmlx made it) becomes format 2 in place; clones made before and after read
it, a push after it writes shards, and nothing of format 1 is deleted.
"""

from __future__ import annotations

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.remote_layout import make_format_1, manifest_keys, manifest_oids, remote_format, shard_paths
from tests.support.repos import Repos, add_commit, assert_clean_worktree, assert_content, clone, remote_store


def test_upgrade_moves_a_format_1_remote_to_format_2_without_deleting_anything(repos: Repos, sealed) -> None:
    root = remote_store(repos.remote)
    make_format_1(root)
    shas = add_commit(repos.work, {"a.bin": 3000, "b.bin": 200_000, "empty.bin": 0}, "v1")
    git("push", "-q", "origin", "main", cwd=repos.work)
    keys = manifest_keys(root)
    assert remote_format(root) == 1 and len(keys) == 3 and shard_paths(root) == []
    before = sealed.root / "before"
    clone(repos.remote, before)

    upgraded = mlx("remote", "upgrade", "origin", cwd=repos.work)

    assert_no_traceback(upgraded)
    assert "copied 3 manifest(s) into 1 shard(s)" in upgraded.stdout + upgraded.stderr
    assert remote_format(root) == 2 and manifest_keys(root) == keys, "nothing of format 1 is deleted"
    assert len(shard_paths(root)) == 1 and manifest_oids(root) == set(shas.values())
    new = add_commit(repos.work, {"c.bin": 5000}, "v2")
    git("push", "-q", "origin", "main", cwd=repos.work)
    assert len(shard_paths(root)) == 2 and manifest_keys(root) == keys, "a format 2 push writes a shard"
    after = sealed.root / "after"
    clone(repos.remote, after)
    for path, sha in {**shas, **new}.items():
        assert_content(after, path, sha)
    assert_clean_worktree(after)
    pulled = mlx("pull", cwd=before)  # a clone made before the upgrade keeps working
    assert_no_traceback(pulled)
    git("pull", "-q", "origin", "main", cwd=before)
    assert_content(before, "c.bin", new["c.bin"])
    again = mlx("remote", "upgrade", cwd=repos.work)
    assert "copied 3 manifest(s)" in again.stdout + again.stderr  # the keys left, once more: harmless
