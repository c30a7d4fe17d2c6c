"""A process-wide request to stop transferring, set when the user interrupts (Ctrl-C) or
the process is asked to terminate (SIGTERM).

Owns: the flag, and `check`, which worker threads call between blocks.
Must not: print or decide what stopping means for a command.

Why a flag: Python delivers a signal to the main thread only. Worker threads moving
objects would carry on, and the interpreter waits for them at exit, so an interrupted push
finished its uploads in the background; and a multipart upload cut off by an immediate
exit stays open on S3, billed, until a lifecycle rule removes it. A worker that finds the
flag set raises `Stopped`; s3transfer then aborts its multipart upload.
"""

from __future__ import annotations

import threading

from gitmlx.errors import MlxError

_requested = threading.Event()


class Stopped(MlxError):
    """Raised in a worker thread once a stop was requested."""


def request() -> None:
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    if _requested.is_set():
        raise Stopped("interrupted", "run the command again: what was not moved is moved then")
