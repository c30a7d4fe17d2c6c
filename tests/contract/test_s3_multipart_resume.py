"""Resuming an S3 multipart upload from its journal (gitmlx/remotes/s3/multipart.py): only
parts that the file still holds and S3 lists unchanged are reused; everything else is sent
again, and the object comes out right. Bytes are counted by a proxy in front of moto."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from gitmlx.remotes.base import RemoteOptions
from gitmlx.remotes.by_url import open_remote
from gitmlx.remotes.s3.multipart import Journal, part_sha256
from gitmlx.remotes.s3.remote import S3Remote
from tests.support.faultproxy import FaultProxy

MiB = 1024 * 1024
PART = 5 * MiB
KEY = "packs/ab/" + "ab" * 32 + ".pack"


def test_resume_reuses_only_parts_it_can_verify(s3_endpoint: str, s3_bucket: str, s3_admin, tmp_path: Path) -> None:
    data = random.Random(11).randbytes(6 * PART + 123)  # 7 parts
    src = tmp_path / "src"
    src.write_bytes(data)
    host, port = s3_endpoint.removeprefix("http://").split(":")
    with FaultProxy((host, int(port))) as proxy:
        remote = open_remote(
            f"s3://{s3_bucket}/pre",
            RemoteOptions(endpoint_url=proxy.url, upload_journals=tmp_path / "uploads", part_size=PART),
        )
        assert isinstance(remote, S3Remote)
        full = f"pre/{KEY}"
        # A killed push's state: parts 1-5 sent and journaled, then part 2 replaced on S3
        # by someone else, part 4 journaled with a sha256 the file no longer matches, and
        # part 5 sent but never journaled (killed in between).
        upload = s3_admin.create_multipart_upload(Bucket=s3_bucket, Key=full)["UploadId"]
        journal = Journal(tmp_path / "uploads", remote.identity, full)
        journal.start(upload, len(data), PART)
        for n in range(1, 6):
            body = data[(n - 1) * PART : n * PART]
            etag = s3_admin.upload_part(Bucket=s3_bucket, Key=full, UploadId=upload, PartNumber=n, Body=body)["ETag"]
            digest = part_sha256(src, (n - 1) * PART, PART)
            if n == 4:
                digest = hashlib.sha256(b"other bytes").hexdigest()
            if n != 5:
                journal.add(n, PART, etag, digest)
        s3_admin.upload_part(Bucket=s3_bucket, Key=full, UploadId=upload, PartNumber=2, Body=b"x" * PART)

        moved: list[int] = []
        remote.put_file(KEY, src, progress=moved.append)
        sent = proxy.stats.sent_bytes

    stored = s3_admin.get_object(Bucket=s3_bucket, Key=full)["Body"].read()
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()
    # Reused: parts 1 and 3. Sent again: 2 (replaced), 4 (file differs), 5 (not journaled), 6, 7.
    assert 4 * PART + 123 <= sent < 5 * PART
    assert sum(moved) == len(data)  # reused parts count once, as done
    assert not list((tmp_path / "uploads").iterdir())  # journal gone once complete
    assert s3_admin.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []


def test_a_journal_for_a_vanished_upload_starts_again(
    s3_endpoint: str, s3_bucket: str, s3_admin, tmp_path: Path
) -> None:
    """gc --remote (or a lifecycle rule) aborted the upload: the push starts a new one."""
    data = random.Random(12).randbytes(2 * PART + 5)
    src = tmp_path / "src"
    src.write_bytes(data)
    remote = open_remote(
        f"s3://{s3_bucket}/pre", RemoteOptions(endpoint_url=s3_endpoint, upload_journals=tmp_path / "j", part_size=PART)
    )
    full = f"pre/{KEY}"
    upload = s3_admin.create_multipart_upload(Bucket=s3_bucket, Key=full)["UploadId"]
    journal = Journal(tmp_path / "j", remote.identity, full)
    journal.start(upload, len(data), PART)
    etag = s3_admin.upload_part(Bucket=s3_bucket, Key=full, UploadId=upload, PartNumber=1, Body=data[:PART])["ETag"]
    journal.add(1, PART, etag, part_sha256(src, 0, PART))
    s3_admin.abort_multipart_upload(Bucket=s3_bucket, Key=full, UploadId=upload)

    remote.put_file(KEY, src)
    assert s3_admin.get_object(Bucket=s3_bucket, Key=full)["Body"].read() == data
    assert not list((tmp_path / "j").iterdir())
