"""trace.redact: what a trace line must never carry."""

from __future__ import annotations

import pytest

from gitmlx.trace import redact


def test_redact_removes_the_environment_secret_headers_signatures_and_url_passwords(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fakeSecretKey0123456789")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "fakeSessionToken42")
    text = redact(
        "secret fakeSecretKey0123456789 token fakeSessionToken42 "
        "{'Authorization': 'AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=abc'} "
        "https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=deadbeef&x=1 "
        "https://user:hunter2@host/path"
    )
    for secret in ("fakeSecretKey0123456789", "fakeSessionToken42", "AWS4-HMAC", "deadbeef", "AKIA%2F1", "hunter2"):
        assert secret not in text, (secret, text)
    assert "x=1" in text and "https://user:<redacted>@host/path" in text
