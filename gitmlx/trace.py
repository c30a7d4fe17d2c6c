"""GIT_MLX_TRACE: what gitmlx asks the remote, what the store decides and what the filter
is asked, logged through `logging`, as GIT_TRACE does for git.

`GIT_MLX_TRACE=1` (or `2`, `true`) logs to stderr; `GIT_MLX_TRACE=/abs/path` appends to
that file (every gitmlx process of a command, filters included, appends to the same
file). Anything else (`0`, `false`, unset) is off; a relative path is refused with one
warning, as git refuses one in GIT_TRACE.

Owns: reading the variable, the `gitmlx` logger and its handler, and redacting secrets
from every line written (AWS secret keys and session tokens from the environment,
Authorization headers, signed query strings, passwords in URLs).
Must not: cost anything when off. `ON` is read once at import; callers test it before
they build a message, and `logging` is imported only by the first line logged (the
filter process's start-up is measured: bench/startup.py).
"""

from __future__ import annotations

import os

_VALUE = os.environ.get("GIT_MLX_TRACE", "")
#: Whether tracing is on: test it before building a message.
ON = _VALUE.strip().lower() not in ("", "0", "false", "no", "off")

_logger = None


def log(category: str, message: str, *args: object) -> None:
    """One trace line, `category: message % args` (categories: remote, store, filter)."""
    if not ON:
        return
    logger = _logger if _logger is not None else _start()
    if logger is not None:
        logger.debug(f"{category}: {message}", *args)


def _start():  # -> logging.Logger | None; not annotated: the annotation would need logging
    global ON, _logger
    import logging

    target = _VALUE.strip()
    if target.lower() in ("1", "2", "true", "yes", "on"):
        handler: logging.Handler = logging.StreamHandler()  # sys.stderr at the time of each write
    elif os.path.isabs(target):
        try:
            handler = logging.FileHandler(target, mode="a", encoding="utf-8")
        except OSError as exc:
            ON = False
            _warn(f"cannot open GIT_MLX_TRACE file '{target}': {exc.strerror or exc}; not tracing")
            return None
    else:
        ON = False
        _warn(f"GIT_MLX_TRACE='{target}' is not an absolute path; not tracing")
        return None

    class RedactingFormatter(logging.Formatter):
        """Every line goes through `redact`, whoever built it (defined here: logging
        loads only once tracing is on)."""

        def format(self, record: logging.LogRecord) -> str:
            return redact(super().format(record))

    handler.setFormatter(RedactingFormatter("%(asctime)s.%(msecs)03d gitmlx[%(process)d] %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("gitmlx")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    _logger = logger
    return logger


def _warn(message: str) -> None:
    import sys

    sys.stderr.write(f"warning: {message}\n")


def redact(text: str) -> str:
    """`text` without the secrets it may hold: the environment's AWS secret key and session
    token, an Authorization header's value, a signed URL's signature and credential, a
    password in a URL."""
    import re

    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        secret = os.environ.get(name)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    text = re.sub(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"',}\n]+", r"\1<redacted>", text)
    text = re.sub(
        r"(?i)((?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|awsaccesskeyid)=)[^&\s\"']+",
        r"\1<redacted>",
        text,
    )
    return re.sub(r"(\w+://[^/\s:@]+):[^/\s@]+@", r"\1:<redacted>@", text)


def timed(category: str, what: str, size=None):  # noqa: ANN001, ANN201 - see below
    """Decorator for a method `(self, key, *args)`: one trace line per call, with the key,
    `size(args)` bytes (asked before the call, so a file a put consumes is still there),
    the outcome and the time. When tracing is off the method is returned unchanged, so
    it costs nothing. (Not annotated: `typing.Callable` would load typing at start-up.)"""

    def wrap(func):  # noqa: ANN001, ANN202
        if not ON:
            return func

        def traced(self, key, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            import time

            try:
                nbytes = size(args) if size is not None else None
            except (OSError, TypeError, IndexError):
                nbytes = None
            begun, outcome = time.monotonic(), "ok"
            try:
                return func(self, key, *args, **kwargs)
            except BaseException as exc:
                outcome = f"failed ({type(exc).__name__})"
                raise
            finally:
                amount = "" if nbytes is None else f", {nbytes} bytes"
                log(category, "%s %s%s: %s, %.1f ms", what, key, amount, outcome, (time.monotonic() - begun) * 1000)

        traced.__name__, traced.__doc__ = func.__name__, func.__doc__
        return traced

    return wrap
