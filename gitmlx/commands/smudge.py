"""`git mlx smudge -- PATH`: the one-shot smudge filter (filter.mlx.smudge), stdin → stdout.

Shares FilterSession with the long-running filter, so both behave identically.
"""

from __future__ import annotations

import os
import sys

from gitmlx import ui
from gitmlx.checkout.session import FilterSession


def run(*, path: str = "", skip_smudge: bool = False) -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing but content may reach git on fd 1
    sys.stdout = sys.stderr
    session = FilterSession(skip_smudge, ui.warn, ui.error_line)
    try:
        body = session.smudge(sys.stdin.buffer, path)
        body(out)
        out.flush()
    finally:
        session.close()
    return 0
