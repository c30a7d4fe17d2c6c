"""`git mlx pointer FILE`: print the pointer FILE would get (nothing is stored)."""

from __future__ import annotations

import sys

from gitmlx.checkout import filters
from gitmlx.errors import MlxError


def run(*, path: str) -> int:
    try:
        with open(path, "rb") as stream:
            pointer = filters.pointer_for_file(stream)
    except OSError as exc:
        raise MlxError(f"cannot read '{path}': {exc.strerror}", "check the path") from exc
    sys.stdout.write(pointer.encode().decode())
    return 0
