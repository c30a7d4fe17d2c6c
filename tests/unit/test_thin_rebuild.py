"""Rebuilding an object from chunks of a thin checkout's work-tree file (a link under
`mlx-thin/`): shared chunks come from the file, each hashed first, and a chunk the user
changed in place is read from the remote instead."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.store.worktreelinks import WorktreeLinks
from gitmlx.transfer.download import download
from gitmlx.transfer.upload import upload

MIB = 1024 * 1024


def test_next_version_takes_verified_chunks_from_the_work_tree_file(tmp_path: Path) -> None:
    rng = random.Random(3)
    v1 = rng.randbytes(8 * MIB)
    v2 = v1[: 4 * MIB] + rng.randbytes(256 * 1024) + v1[4 * MIB + 256 * 1024 :]
    source = Store(tmp_path / "source")
    p1, p2 = (source.insert_stream(io.BytesIO(data)) for data in (v1, v2))
    source.sync()
    remote = LocalRemote(tmp_path / "remote")
    assert upload(source, remote, [p1, p2]).ok

    client = Store(tmp_path / "client")
    client.worktree_links = WorktreeLinks(tmp_path / "git")
    assert download(client, remote, [p1]).ok
    work_file = tmp_path / "model.bin"
    os.rename(client.path(p1.oid), work_file)  # a thin placement: the store keeps no copy
    client.worktree_links.add(p1.oid, str(work_file), os.lstat(work_file))
    with open(work_file, "r+b") as f:  # edited in place: these chunks must not be used
        f.seek(MIB)
        f.write(bytes(64 * 1024))

    result = download(client, remote, [p2])

    assert result.ok, result.failed
    with client.open(p2.oid) as f:
        assert f.read() == v2
    # The new 256 KiB and the edited chunks come from the remote; the rest from the file.
    assert 256 * 1024 < result.wire_bytes < 2 * MIB, result.wire_bytes
