"""GIT_MLX_TRACE for S3: one line per HTTP attempt (method, key, bytes, status, attempt,
time), from botocore's own events, registered once when the client is made.

Owns: turning botocore's `request-created` / `response-received` events into trace lines.
Must not: log a header, a query string or a body: the key comes from the URL's path, the
byte counts from lengths, so no credential or signature can reach the log (the trace's
formatter redacts besides).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote, urlsplit

from gitmlx import trace

_STARTED = "gitmlx_trace_started"


def attach(client: Any) -> None:
    """Log every request `client` sends (only called when tracing is on)."""
    client.meta.events.register("request-created.s3", _request_created)
    client.meta.events.register("response-received.s3", _response_received)


def _body_length(body: object) -> int | None:
    if body is None or body == b"":
        return 0
    try:
        return len(body)  # type: ignore[arg-type]  # bytes, or s3transfer's ReadFileChunk
    except TypeError:
        return None


def _request_created(request: Any, operation_name: str = "", **_: Any) -> None:
    """Each attempt (botocore makes a new request for a retry): when it started and what it is."""
    parts = urlsplit(request.url)
    request.context[_STARTED] = (time.monotonic(), request.method, unquote(parts.path), operation_name)
    request.context["gitmlx_trace_sent"] = _body_length(request.body)


def _response_received(context: dict, response_dict: dict | None, exception: BaseException | None, **_: Any) -> None:
    started = context.get(_STARTED)
    if started is None:
        return
    begun, method, path, operation = started
    ms = (time.monotonic() - begun) * 1000
    attempt = (context.get("retries") or {}).get("attempt", 1)
    sent = context.get("gitmlx_trace_sent")
    if response_dict is not None:
        status = str(response_dict.get("status_code"))
        received = (response_dict.get("headers") or {}).get("content-length", "?")
    else:
        status, received = f"failed ({type(exception).__name__})", 0
    trace.log(
        "remote",
        "s3 %s %s (%s): %s, %s bytes sent, %s bytes received, attempt %s, %.1f ms",
        method,
        path,
        operation,
        status,
        "?" if sent is None else sent,
        received,
        attempt,
        ms,
    )
