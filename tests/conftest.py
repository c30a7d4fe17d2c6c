"""Fixtures for every test folder, registered as plugins from tests/support (pytest honours
`pytest_plugins` only in this top-level conftest).

`tests.support.sealed`: the sealed environment (`sealed`, autouse in the folders whose tests
run git) and a repository pair (`repos`). `tests.support.s3`: moto's S3 server on 127.0.0.1,
a bucket per test and the AWS environment (`aws_env`, `s3_endpoint`, `s3_admin`,
`s3_bucket`, `s3`, `s3_env`). `tests.support.lfs`: a HOME where only Git LFS is set up
(`lfs_env`).
"""

from __future__ import annotations

pytest_plugins = ["tests.support.sealed", "tests.support.s3", "tests.support.lfs"]
