"""The format 1 fixture (tests/fixtures/format1/README.md) in a bucket: its remote's files
uploaded as keys under a prefix, as docs/storage-format.md joins them. This gitmlx reads
every commit from it, and a push keeps it format 1.

Nothing here depends on the format a new remote gets: the remote is the fixture's.
"""

from __future__ import annotations

import shutil

from tests.spec_reader import reader
from tests.support import format1_fixture as f1
from tests.support.commands import git
from tests.support.s3 import S3Setup
from tests.support.sealed import Sealed

PREFIX = "team/models"


def test_s3_format1_remote_is_read_and_stays_format1_when_pushed_to(s3: S3Setup, sealed: Sealed) -> None:
    expected = f1.expected()
    bare = f1.unpack(sealed.root)
    mirror = sealed.root / "mirror"  # what the bucket holds, to read with the spec's reader
    f1.upload_to_s3(s3.admin, s3.bucket, PREFIX, bare / "mlx")
    shutil.move(bare / "mlx", mirror)  # the bucket is now the only copy
    config = ["-c", f"mlx.url={s3.url(PREFIX)}", "-c", f"mlx.s3.endpoint-url={s3.endpoint}"]
    work = sealed.root / "work"
    git("clone", "-q", *config, bare, work, cwd=sealed.root)
    v1, v2 = expected["commits"][1:]
    f1.assert_remote_fsck_clean(work, v2)
    f1.assert_restores(work, [v2, v1])  # every object of both (tests/e2e checks "track *.bin" too)
    assert f1.s3_keys(s3.admin, s3.bucket, PREFIX) == expected["remote_keys"], "reading changed the remote"

    v3, new = f1.commit_next_version(work, expected)
    git("push", "-q", "origin", "main", cwd=work)
    after = f1.s3_keys(s3.admin, s3.bucket, PREFIX)
    oids = {name: f1.sha256(data) for name, data in new.items()}
    for key in f1.assert_stays_format1(expected["remote_keys"], after, oids.values()):
        path = mirror.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(s3.admin.get_object(Bucket=s3.bucket, Key=f"{PREFIX}/{key}")["Body"].read())
    for name, data in new.items():
        assert reader.read_object(mirror, oids[name], len(data)) == data, name
    fresh = sealed.root / "fresh"
    git("clone", "-q", *config, bare, fresh, cwd=sealed.root)
    f1.assert_restores(fresh, [v3])  # v3 names objects of v1, of v2 and its own
