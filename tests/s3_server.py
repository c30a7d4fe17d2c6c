"""Pytest fixtures for an S3 remote: moto's server on 127.0.0.1 and a fresh bucket per test.

Owns: starting and stopping one in-process moto server per test session, the dummy AWS
environment every S3 test runs in, and per-test buckets (emptied and removed afterwards).
Must not: reach anything but 127.0.0.1, or let a real credential, profile or instance
role be picked up (the environment is sealed before boto3 first looks).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

#: The dummy secret every S3 test runs with; a test can assert no message contains it.
FAKE_SECRET = "gitmlx-test-secret-6f1c9e2a"
REGION = "us-east-1"

_SEALED = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
_REMOVED = (
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
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
)


@pytest.fixture(scope="session")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Dummy credentials and no way to find real ones (files, profiles, metadata)."""
    home = tmp_path_factory.mktemp("aws")
    env = dict(_SEALED)
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(Path(home, "no-credentials"))
    env["AWS_CONFIG_FILE"] = str(Path(home, "no-config"))
    with pytest.MonkeyPatch.context() as mp:
        for name in _REMOVED:
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
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)
