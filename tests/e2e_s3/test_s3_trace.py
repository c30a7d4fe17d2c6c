"""GIT_MLX_TRACE: every request a push sends to S3 is logged with its status and time, and
no secret reaches the log."""

from __future__ import annotations

import re

from tests.support.commands import git
from tests.support.content import KIB
from tests.support.repos import add_commit
from tests.support.s3 import S3Setup, bucket_objects, make_s3_repo

LINE = re.compile(
    r"^\d\d:\d\d:\d\d\.\d{3} gitmlx\[\d+\] remote: s3 (?P<method>[A-Z]+) (?P<path>\S+) \((?P<op>\w+)\): "
    r"(?P<status>\d{3}), (?:\d+|\?) bytes sent, (?:\d+|\?) bytes received, attempt \d+, [\d.]+ ms$"
)


def test_traced_push_logs_each_s3_request_with_status_and_time_and_no_secret(s3: S3Setup, sealed) -> None:
    repos = make_s3_repo(sealed.root, s3.url("team/models"), s3.endpoint)
    add_commit(repos.work, {"a.bin": 40 * KIB, "b.bin": 3 * KIB})
    pushed = git("push", "origin", "main", cwd=repos.work, env={"GIT_MLX_TRACE": "1"})

    lines = [line for line in pushed.stderr.splitlines() if " remote: s3 " in line]
    parsed = [LINE.match(line) for line in lines]
    assert lines and all(parsed), "\n".join(lines)
    puts = {m["path"] for m in parsed if m["method"] == "PUT" and m["status"] == "200"}
    stored = {f"/{s3.bucket}/{o.key}" for o in bucket_objects(s3.admin, s3.bucket)}
    uploaded = {key for key in stored if "/packs/" in key or "/manifests/" in key or "/shards/" in key}
    assert uploaded and uploaded <= puts, (uploaded, puts)
    assert any(m["status"] == "404" for m in parsed)  # the format marker it asked for first was not there

    assert s3.secret not in pushed.output
    for secret_part in ("Authorization", "Signature=", "Credential=", "AWS4-HMAC"):
        assert secret_part not in pushed.output, secret_part


def test_trace_to_a_file_appends_and_off_logs_nothing(s3: S3Setup, sealed) -> None:
    repos = make_s3_repo(sealed.root, s3.url("team/models"), s3.endpoint)
    log = sealed.tmp / "mlx-trace.log"
    log.write_text("earlier line\n")
    add_commit(repos.work, {"a.bin": 2 * KIB})
    quiet = git("push", "origin", "main", cwd=repos.work, env={"GIT_MLX_TRACE": "0"})
    assert "gitmlx[" not in quiet.stderr
    add_commit(repos.work, {"b.bin": 2 * KIB}, seed="b")
    traced = git("push", "origin", "main", cwd=repos.work, env={"GIT_MLX_TRACE": str(log)})
    text = log.read_text()
    assert text.startswith("earlier line\n") and " remote: s3 PUT " in text
    assert "gitmlx[" not in traced.stderr
    assert s3.secret not in text
