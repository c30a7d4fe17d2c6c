"""Pytest plugin: an S3 remote for the tests, moto's server on 127.0.0.1 (port 0) with a
fresh bucket per test, and the AWS environment the tests run in.

Owns: starting and stopping one in-process moto server per test session; the dummy AWS
environment of the whole session (`aws_env`) and of one sealed test (`s3`: credentials
with a secret unique to the test, so a test can prove it never shows up anywhere);
per-test buckets (emptied and removed afterwards); publishing a repository whose committed
`.mlxconfig` names an S3 remote; listing a bucket as a user with boto3 would.
Must not: reach anything but 127.0.0.1, or let a real credential, profile or instance
role be picked up (the environment is sealed before boto3 first looks); import gitmlx
(the remote layout is looked at only as "keys under the prefix").
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.support.commands import git, mlx
from tests.support.repos import Repos, make_repo_with_bare_remote
from tests.support.sealed import Sealed

#: The dummy secret every S3 test runs with; a test can assert no message contains it.
FAKE_SECRET = "gitmlx-test-secret-6f1c9e2a"
REGION = "us-east-1"
ACCESS_KEY_ID = "AKIAGITMLXE2ETESTING"

_SESSION = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}

#: Variables that could point boto3 at something other than the test's moto server, or
#: change how it retries.
AWS_LEAKS = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


@pytest.fixture(scope="session")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Dummy credentials and no way to find real ones (files, profiles, metadata)."""
    home = tmp_path_factory.mktemp("aws")
    env = dict(_SESSION)
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(Path(home, "no-credentials"))
    env["AWS_CONFIG_FILE"] = str(Path(home, "no-config"))
    with pytest.MonkeyPatch.context() as mp:
        for name in AWS_LEAKS:
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        yield env


@pytest.fixture(scope="session")
def s3_endpoint(aws_env: dict[str, str]) -> Iterator[str]:
    """`http://127.0.0.1:PORT` of a moto S3 server running for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> object:
    """A plain boto3 client on `endpoint`, for tests that look behind the backend's back."""
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION)


@pytest.fixture(scope="session")
def s3_admin(s3_endpoint: str) -> object:
    """A plain boto3 client on the moto server, to set up and inspect buckets directly."""
    return s3_client(s3_endpoint)


@pytest.fixture
def s3_bucket(s3_admin: object) -> Iterator[str]:
    """A new, empty bucket for one test; emptied and deleted afterwards."""
    client = s3_admin
    name = f"test-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        _remove_bucket(client, name)


def _remove_bucket(client: object, name: str) -> None:
    uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
    for upload in uploads:
        client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for obj in bucket_objects(client, name):
        client.delete_object(Bucket=name, Key=obj.key)
    client.delete_bucket(Bucket=name)


@pytest.fixture
def s3_env(sealed: Sealed, aws_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The session's dummy AWS environment (`aws_env`), in this sealed test and the gits it runs."""
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    return aws_env


# --- one test's credentials, as a CI job sets them ----------------------------------------


def aws_variables(secret: str) -> dict[str, str]:
    """What a CI job puts in the environment for S3: credentials and a region, nothing else."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",  # no wait for an instance role that is not there
        "NO_PROXY": "127.0.0.1,localhost",
    }


@dataclass(frozen=True)
class S3Setup:
    endpoint: str  # http://127.0.0.1:PORT of moto
    bucket: str  # a fresh bucket for this test
    admin: object  # a plain boto3 client on moto, to look behind gitmlx's back
    secret: str  # the AWS_SECRET_ACCESS_KEY in the environment, unique to this test
    env: dict[str, str]  # the AWS variables set

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.endpoint.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def url(self, prefix: str = "team/models") -> str:
        return f"s3://{self.bucket}/{prefix}"


@pytest.fixture
def s3(sealed: Sealed, s3_endpoint: str, s3_bucket: str, s3_admin: object, monkeypatch: pytest.MonkeyPatch) -> S3Setup:
    """The sealed environment plus dummy AWS credentials with a secret unique to this test."""
    secret = f"testSecret{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"
    env = aws_variables(secret)
    for name in AWS_LEAKS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return S3Setup(s3_endpoint, s3_bucket, s3_admin, secret, env)


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released): an unreachable endpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- repositories on S3 ----------------------------------------------------------------


def make_s3_repo(root: Path, url: str, endpoint: str, name: str = "work") -> Repos:
    """`make_repo_with_bare_remote` plus `git mlx remote set URL --endpoint-url E`, committed."""
    repos = make_repo_with_bare_remote(root, name=name)
    mlx("remote", "set", url, "--endpoint-url", endpoint, cwd=repos.work)
    text = (repos.work / ".mlxconfig").read_text()
    assert url in text and endpoint in text, f".mlxconfig does not hold the remote:\n{text}"
    git("add", ".mlxconfig", cwd=repos.work)
    git("commit", "-q", "-m", "artifact remote on S3", cwd=repos.work)
    return repos


# --- the bucket as boto3 sees it -------------------------------------------------------


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str

    @property
    def multipart(self) -> bool:
        """S3 gives an object completed from N parts the ETag `"<md5 of md5s>-N"`."""
        return "-" in self.etag.strip('"')


def bucket_objects(client: object, bucket: str) -> list[S3Object]:
    """Every object in the bucket, whatever its key."""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found.append(S3Object(obj["Key"], int(obj["Size"]), obj["ETag"]))
    return found


def open_multipart_uploads(client: object, bucket: str) -> list[str]:
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def assert_all_under_prefix(objects: Iterable[S3Object], prefix: str) -> None:
    objects = list(objects)
    assert objects, "the bucket is empty: nothing was pushed"
    stray = [o.key for o in objects if not o.key.startswith(prefix.rstrip("/") + "/")]
    assert not stray, f"objects outside '{prefix}/': {stray[:10]}"
