"""Shared pytest fixtures; each group lives in its own helper module beside this file."""

from __future__ import annotations

from s3_server import aws_env, s3_admin, s3_bucket, s3_endpoint

__all__ = ["aws_env", "s3_admin", "s3_bucket", "s3_endpoint"]
