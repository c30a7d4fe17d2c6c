"""An S3 remote holds the same keys as a directory remote, joined to the prefix as
docs/storage-format.md ("Where a remote lives") says: the bucket, copied to a directory by
that rule, is read back by the from-spec reader."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.spec_reader import reader
from tests.support.commands import git
from tests.support.repos import commit_all
from tests.support.s3 import S3Setup, bucket_objects, make_s3_repo


@pytest.mark.parametrize(("prefix", "joined"), [("team/models/", "team/models/"), ("", "")])
def test_s3_keys_are_the_prefix_slash_key(s3: S3Setup, tmp_path: Path, prefix: str, joined: str) -> None:
    repos = make_s3_repo(tmp_path, f"s3://{s3.bucket}/{prefix}", s3.endpoint)
    files = {"empty.bin": b"", "a.bin": random.Random(1).randbytes(300 * 1024), "t.bin": b"abc " * 40_000}
    for name, data in files.items():
        (repos.work / name).write_bytes(data)
    commit_all(repos.work, "files")
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=repos.work)

    keys = [o.key for o in bucket_objects(s3.admin, s3.bucket)]
    assert f"{joined}mlx-remote.json" in keys
    root = tmp_path / "mirror"
    for key in keys:
        assert key.startswith(joined), key
        path = root.joinpath(*key[len(joined) :].split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.admin.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    for data in files.values():
        assert reader.read_object(root, reader.sha256(data), len(data)) == data
