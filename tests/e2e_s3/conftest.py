"""Fixtures for the S3 end-to-end tests: the real `git` and `git-mlx` against moto's S3
server over HTTP on 127.0.0.1.

Reuses, unchanged, the sealed environment of tests/e2e (its `sealed` fixture is autouse
here too: own HOME, global git config made by `git mlx install`, TMPDIR, no system config)
and the session's moto server and per-test bucket from tests/s3_server.py. On top of that,
`s3` puts AWS variables in the environment: dummy credentials with a secret unique to the
test, so a test can prove that secret never shows up anywhere.
Must not: reach anything but 127.0.0.1, or see a real credential, profile or instance role.
"""

from __future__ import annotations

import uuid

import pytest
from s3_helpers import AWS_LEAKS, S3Setup, aws_variables, e2e_conftest

# Re-exported so pytest registers them for this folder; `sealed` stays autouse.
global_gitconfig = e2e_conftest.global_gitconfig
sealed = e2e_conftest.sealed


@pytest.fixture
def s3(sealed, s3_endpoint: str, s3_bucket: str, s3_admin: object, monkeypatch: pytest.MonkeyPatch) -> S3Setup:
    """The sealed environment plus AWS credentials with a secret unique to this test."""
    secret = f"e2eSecret{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"
    env = aws_variables(secret)
    for name in AWS_LEAKS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return S3Setup(s3_endpoint, s3_bucket, s3_admin, secret, env)
