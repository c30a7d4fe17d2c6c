"""Fixtures for the reliability tests: the sealed environment of tests/e2e, reused unchanged,
plus an S3 set-up and a way to read crash logs inside a test.

Owns: putting tests/e2e and tests/e2e_s3 on sys.path (their helper modules are imported
as top-level `helpers` and `s3_helpers`, as their own conftests do) and re-exporting the
e2e fixtures so pytest registers them for this folder; `sealed` stays autouse.
Must not: reach anything but 127.0.0.1, or touch the user's HOME or git config.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent.parent
for _folder in (_TESTS / "e2e", _TESTS / "e2e_s3", _TESTS):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from helpers import Repos, make_repo_with_bare_remote  # noqa: E402
from s3_helpers import AWS_LEAKS, S3Setup, aws_variables, e2e_conftest  # noqa: E402

# Re-exported so pytest registers them here; `sealed` is autouse (own HOME, global git
# config from `git mlx install`, TMPDIR, no system config) and fails a test that left a
# crash log behind.
global_gitconfig = e2e_conftest.global_gitconfig
sealed = e2e_conftest.sealed


@pytest.fixture
def repos(sealed) -> Repos:
    """`remote.git` (bare) and `work` (origin = remote.git, '*.bin' tracked and committed)."""
    return make_repo_with_bare_remote(sealed.root)


@pytest.fixture
def s3(sealed, s3_endpoint: str, s3_bucket: str, s3_admin: object, monkeypatch: pytest.MonkeyPatch) -> S3Setup:
    """The sealed environment plus dummy AWS credentials with a secret unique to the test."""
    secret = f"relSecret{uuid.uuid4().hex}"
    env = aws_variables(secret)
    for name in AWS_LEAKS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return S3Setup(s3_endpoint, s3_bucket, s3_admin, secret, env)
