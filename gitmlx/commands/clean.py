"""`git mlx clean -- PATH`: the one-shot clean filter (filter.mlx.clean), stdin → stdout."""

from __future__ import annotations

import sys

from gitmlx.checkout.session import FilterSession


def run(*, path: str = "") -> int:
    session = FilterSession()
    try:
        pointer = session.clean(sys.stdin.buffer, path)
    finally:
        session.close()
    sys.stdout.buffer.write(pointer)
    sys.stdout.buffer.flush()
    return 0
