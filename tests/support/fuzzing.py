"""Bounds for hostile-content fuzzing: each input handled within a time and memory budget,
with a result or one clear gitmlx error, and nothing else escaping.

Owns: `bounded` (run one input under tracemalloc and a clock, check what came out) and
the count of inputs tried per kind (printed when the fuzz module ends; `-s` shows it).
Must not: know any parser: the tests pass the function and the error types it may raise.
"""

from __future__ import annotations

import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

from gitmlx.errors import MlxError

#: Per input: CPU seconds of this process (tracemalloc slows Python down; the bound holds
#: with it on). CPU, not wall-clock, time: on a loaded machine (CI, helpers sharing two
#: cores) a process waits for the CPU for a second now and then, whatever it runs.
SECONDS = 1.0
#: Per input: bytes Python may allocate at peak beyond what it held before.
MEMORY = 64 << 20
#: Inputs tried per kind in this run.
TRIED: Counter[str] = Counter()


def bounded(
    kind: str, fn: Callable[..., Any], *args: Any, errors: tuple[type[BaseException], ...] = (MlxError,)
) -> Any:
    """`fn(*args)`'s result, or the error it raised if it is one of `errors` and reads as
    one clear line. Fails the test on any other exception, on more than SECONDS, or on a
    peak of more than MEMORY newly allocated bytes."""
    TRIED[kind] += 1
    tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    start = time.process_time()
    try:
        outcome: Any = fn(*args)
    except errors as exc:
        outcome = exc
    finally:
        elapsed = time.process_time() - start
        peak = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
    assert elapsed <= SECONDS, f"{kind}: {elapsed:.2f} CPU seconds for one input"
    assert peak <= MEMORY, f"{kind}: {peak / (1 << 20):.1f} MiB for one input"
    if isinstance(outcome, BaseException):
        _assert_one_clear_line(kind, outcome)
    return outcome


def _assert_one_clear_line(kind: str, exc: BaseException) -> None:
    text = str(exc)
    assert text.strip(), f"{kind}: {type(exc).__name__} with no message"
    assert "\n" not in text and len(text) <= 400, f"{kind}: not one clear line: {text[:500]!r}"
    if isinstance(exc, MlxError) and exc.hint is not None:
        assert "\n" not in exc.hint and len(exc.hint) <= 400, f"{kind}: hint is not one line: {exc.hint[:500]!r}"
