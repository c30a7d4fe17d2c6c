"""actions.upload hands the transfer code at most UPLOAD_BATCH objects at a time (what an
upload holds per object then stays bounded), and the push still leaves every object on
the remote, counted once, each restorable byte for byte.

A real git repository for the context, a real store and a directory remote.
"""

from __future__ import annotations

import io
import random
import subprocess
from pathlib import Path

import pytest

from gitmlx import actions
from gitmlx.context import RepoContext
from gitmlx.git.scan import TrackedFile
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.transfer import upload as uploads
from gitmlx.transfer.download import download
from tests.support.remote_layout import new_process, shard_paths


def test_a_push_larger_than_one_batch_uploads_every_object_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    ctx = RepoContext(work)
    rng = random.Random(7)
    contents = [rng.randbytes(3000 + i) for i in range(7)]
    pointers = [ctx.store.insert_stream(io.BytesIO(data)) for data in contents]
    files = [TrackedFile(f"f{i}.bin", p) for i, p in enumerate(pointers)] + [TrackedFile("again.bin", pointers[0])]
    calls: list[int] = []
    real = uploads.upload

    def counted(store, remote, pointers, *args, **kwargs):  # type: ignore[no-untyped-def]
        pointers = list(pointers)
        calls.append(len(pointers))
        return real(store, remote, pointers, *args, **kwargs)

    monkeypatch.setattr(actions, "UPLOAD_BATCH", 3)
    monkeypatch.setattr(uploads, "upload", counted)
    remote = LocalRemote(tmp_path / "remote")

    result = actions.upload(ctx, remote, files, quiet=True)

    assert calls == [3, 3, 1]
    assert result.ok and sorted(p.oid for p in result.moved) == sorted(p.oid for p in pointers)
    assert len(shard_paths(remote.root)) == 3
    new_process()
    fresh = Store(tmp_path / "fresh")
    fetched = download(fresh, remote, pointers, concurrency=2)
    assert fetched.ok and len(fetched.moved) == len(pointers)
    for pointer, data in zip(pointers, contents, strict=True):
        with fresh.open(pointer.oid) as stored:
            assert stored.read() == data
