"""Which S3 endpoints a committed .mlxconfig may name without the user's say-so."""

from __future__ import annotations

import pytest

from gitmlx.config import endpoint_origin, trusted_without_asking


@pytest.mark.parametrize(
    "url",
    [
        "https://s3.amazonaws.com",
        "https://s3.eu-west-1.amazonaws.com/",
        "https://bucket.s3.us-east-2.amazonaws.com",
        "https://s3.cn-north-1.amazonaws.com.cn",
        "http://127.0.0.1:9000",
        "http://localhost:4566",
        "http://[::1]:9000",
    ],
)
def test_aws_and_loopback_are_trusted(url: str) -> None:
    assert trusted_without_asking(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://s3.amazonaws.com",  # credentials' signatures over plain http
        "https://s3.amazonaws.com.evil.example",
        "https://evilamazonaws.com",
        "https://minio.example.com",
        "http://10.0.0.5:9000",
        "https://127.0.0.1.nip.io",
        "",
        "not a url",
    ],
)
def test_everything_else_needs_the_users_trust(url: str) -> None:
    assert not trusted_without_asking(url)


def test_origin_is_lowercased_and_only_the_plain_form_counts() -> None:
    assert endpoint_origin("HTTPS://MinIO.Example.com:9000/") == "https://minio.example.com:9000"
    for tricky in ("https://evil.example\\@s3.amazonaws.com", "https://u@s3.amazonaws.com", "https://h/path", "x"):
        assert endpoint_origin(tricky) == ""
        assert not trusted_without_asking(tricky)
