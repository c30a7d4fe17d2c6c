"""Turning boto's failures into one line a user can act on.

Owns: the mapping from botocore, s3transfer and urllib3 exceptions (and S3 error codes)
to a `RemoteError` that names the remote, the cause and the fix, never a credential; the
retry hook that stops botocore retrying failures that came from our side of a request.
Must not: talk to S3.
"""

from __future__ import annotations

import os
import re
from typing import Protocol

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
    SSLError,
)
from urllib3.exceptions import HTTPError, ProtocolError

from gitmlx.errors import RemoteError


class Where(Protocol):
    """The remote an error is about."""

    display_url: str
    endpoint: str
    bucket: str


DROPPED = (
    ReadTimeoutError,
    ResponseStreamingError,
    IncompleteReadError,
    ConnectionClosedError,
    ProtocolError,
    ConnectionError,
)
_SECRET_QUERY = re.compile(r"(?i)(x-amz-(?:signature|credential|security-token)=)[^&\s\"']+")
_USERINFO = re.compile(r"//[^/@\s]+@")
_CREDENTIALS_REJECTED = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidSecurity",
}
_WRONG_REGION = {
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
    "TemporaryRedirect",
    "301",
}
_CREDENTIALS_HINT = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
ENDPOINT_HINT = "check the network, or the endpoint: 'git config mlx.s3.endpoint-url URL' (or AWS_ENDPOINT_URL_S3)"


def translate(exc: BaseException, action: str, key: str | None, remote: Where) -> RemoteError:
    """One line naming the remote, the cause and the fix; never a credential."""
    where = f"remote '{remote.display_url}'"
    what = f"cannot {action} '{key}' on {where}" if key else f"cannot {action} {where}"
    if isinstance(exc, S3UploadFailedError):  # wraps the ClientError s3transfer raised
        inner = exc.__cause__ or exc.__context__
        if isinstance(inner, (BotoCoreError, ClientError)):
            return translate(inner, action, key, remote)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return RemoteError(f"no AWS credentials found for {where}", _CREDENTIALS_HINT)
    if isinstance(exc, CredentialRetrievalError):
        provider = exc.kwargs.get("provider", "?")
        return RemoteError(
            f"cannot load AWS credentials ({provider}) for {where}",
            f"check the {provider} credential settings, or {_CREDENTIALS_HINT}",
        )
    if isinstance(exc, SSLError):
        return RemoteError(
            f"{what}: TLS error talking to endpoint '{remote.endpoint}'",
            "check the endpoint's scheme (http/https) and AWS_CA_BUNDLE",
        )
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError)):
        return RemoteError(f"{what}: endpoint '{remote.endpoint}' is unreachable", ENDPOINT_HINT)
    if isinstance(exc, DROPPED):
        return RemoteError(
            f"{what}: the connection to '{remote.endpoint}' kept failing ({type(exc).__name__})",
            "check the network and run the command again",
        )
    if isinstance(exc, ClientError):
        return _translate_client_error(exc, what, where, remote)
    return RemoteError(
        f"{what}: {type(exc).__name__}: {clean(str(exc))}",
        "run the command again; if it keeps failing, check 'git mlx env'",
    )


def _translate_client_error(exc: ClientError, what: str, where: str, remote: Where) -> RemoteError:
    code, status = error_code(exc), http_status(exc)
    if code == "NoSuchBucket":
        return RemoteError(
            f"bucket '{remote.bucket}' of {where} does not exist",
            "create the bucket, or fix the URL: 'git mlx remote set s3://BUCKET[/PREFIX]'",
        )
    if code in _CREDENTIALS_REJECTED:
        return RemoteError(
            f"{what}: the AWS credentials were rejected ({code})",
            f"check or renew them: {_CREDENTIALS_HINT}",
        )
    if code in _WRONG_REGION or status == 301:
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = headers.get("x-amz-bucket-region") or "REGION"
        return RemoteError(
            f"{what}: bucket '{remote.bucket}' is in another region ({code})",
            f"set the bucket's region: 'git config mlx.s3.region {region}' (or AWS_REGION)",
        )
    if code in ("AccessDenied", "AllAccessDisabled") or status == 403:
        return RemoteError(
            f"{what}: access denied",
            f"check that the AWS credentials in use (AWS_PROFILE / AWS_ACCESS_KEY_ID) "
            f"are allowed to use bucket '{remote.bucket}'",
        )
    if code in ("SlowDown", "Throttling", "ThrottlingException") or status == 503:
        return RemoteError(
            f"{what}: the server is throttling requests ({code})",
            "retry later, or lower mlx.concurrency",
        )
    if status and status >= 500:
        return RemoteError(f"{what}: server error {status} ({code})", "retry later")
    message = clean(exc.response.get("Error", {}).get("Message") or "")[:200]
    return RemoteError(
        f"{what}: {code or status}" + (f": {message}" if message else ""),
        "check the remote's settings with 'git mlx env'",
    )


def no_retry_for_local_failures(caught_exception: Exception | None = None, attempts: int = 0, **_: object) -> None:
    """botocore hook: fail at once when the failure came from our side of a request, and
    soon when the endpoint cannot be reached at all.

    botocore wraps anything raised while a request body is read (a progress callback,
    s3transfer cancelling an upload on Ctrl-C) in a bare HTTPClientError and retries it
    like a network failure, up to `max_attempts` times with backoff. Socket and urllib3
    errors (real network trouble) stay retryable. A connection that cannot even be opened
    (refused, no route, unknown host) gets one retry, not the full backoff: a wrong
    endpoint should say so in seconds, not after half a minute.
    """
    if isinstance(caught_exception, EndpointConnectionError) and attempts >= 2:
        raise caught_exception
    if type(caught_exception) is HTTPClientError:
        inner = caught_exception.kwargs.get("error")
        if isinstance(inner, Exception) and not isinstance(inner, (OSError, HTTPError)):
            raise inner


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def clean(text: str) -> str:
    """`text` on one line, without URL credentials, signatures or the secrets in env."""
    text = _SECRET_QUERY.sub(r"\1***", _USERINFO.sub("//", text))
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        secret = os.environ.get(name)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return " ".join(text.split())
