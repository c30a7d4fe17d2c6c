"""The embedded remote beside a bare git remote (`<bare>/mlx`) is also the bare repository's
own local store (#21 item 16): store upkeep run inside the bare repository must never touch
the remote's data. The two share one folder by design (clones made before this test
existed find their artifacts there), and keep apart by name: docs/local-store.md,
"A store that is also a remote"."""

from __future__ import annotations

import hashlib
import os
import re
import time

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import MIB
from tests.support.repos import Repos, add_commit, remote_store

#: The names the remote writes (docs/storage-format.md, "Layout"; a directory remote's
#: writes in progress are `tmp/put-*`); the bare repository's store has its own beside them.
REMOTE_NAME = re.compile(
    r"mlx-remote\.json|manifests/../../[0-9a-f]{64}|shards/[0-9a-f]{64}\.shard|packs/../[0-9a-f]{64}\.pack|tmp/put-.*"
)


def remote_contents(bare) -> dict[str, str]:
    """sha256 of every file of the embedded remote, by relative path."""
    root = remote_store(bare)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and REMOTE_NAME.fullmatch(str(p.relative_to(root)))
    }


def test_store_upkeep_inside_the_bare_remote_leaves_the_remote_whole(repos: Repos, sealed) -> None:
    shas = add_commit(repos.work, {"big.bin": 3 * MIB, "small.bin": 1000, "mid.bin": 300_000}, "bare")
    git("push", "-q", "origin", "main", cwd=repos.work)
    bare = repos.remote
    # A write of the remote's own in progress (a pusher's copy) that looks old to a sweep.
    put = remote_store(bare) / "tmp" / "put-1-0123456789abcdef"
    put.parent.mkdir(exist_ok=True)
    put.write_bytes(b"a pusher's copy")
    old = time.time() - 3 * 86400
    os.utime(put, (old, old))
    before = remote_contents(bare)
    assert any(k.startswith(("manifests/", "shards/")) for k in before) and any(k.startswith("packs/") for k in before)

    # Give the bare repository what its upkeep needs to act: its own remote (itself) and a
    # git remote whose refs reach everything.
    git("config", "mlx.url", str(remote_store(bare)), cwd=bare)
    git("remote", "add", "origin", str(repos.work), cwd=bare)
    results = [
        mlx("fetch", "--all", cwd=bare, check=False),  # fills the bare's own store from itself
        mlx("fsck", cwd=bare, check=False),
        mlx("prune", "--verify-remote", cwd=bare, check=False),
        mlx("prune", cwd=bare, check=False),
        mlx("fsck", "--remote", "--repair", cwd=bare, check=False),
    ]
    assert_no_traceback(*results)
    after = remote_contents(bare)
    assert after == before, "\n".join(str(r) for r in results)
    # The remote's own upkeep deletes the killed writer's file (untouched for more than a
    # day, past a grace of 0) and nothing else.
    results = [mlx("gc", "--remote", "--confirm", "--grace", "0", "origin", cwd=bare, check=False) for _ in range(2)]
    assert_no_traceback(*results)
    gone = str(put.relative_to(remote_store(bare)))
    assert gone in before
    assert remote_contents(bare) == {k: v for k, v in before.items() if k != gone}, "\n".join(str(r) for r in results)

    dest = sealed.root / "fresh"
    git("clone", "-q", bare, dest, cwd=sealed.root)
    for name, sha in shas.items():
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == sha
