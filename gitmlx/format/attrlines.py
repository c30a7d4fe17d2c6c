"""Editing the filter drivers named in gitattributes text, as `migrate export` needs.

Owns: rewriting, on each line of a .gitattributes file, the attributes `filter=D`,
`diff=D` and `merge=D` of given drivers: switching them to another driver, or removing
them (and the line, when nothing but its pattern would be left). Patterns (quoted ones
too), other attributes, comments, blank lines and line endings stay byte for byte.
Must not: do I/O, or decide which drivers a migration switches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: One attribute field after the pattern: its leading blanks, then the field itself.
_FIELD = re.compile(rb"([ \t]+)([^ \t\r\n]+)")
_BARE_PATTERN = re.compile(rb"[^ \t\r\n]*")


def _pattern_end(line: bytes) -> int:
    """Index just past the line's pattern: a "quoted" one may hold blanks and escapes."""
    start = len(line) - len(line.lstrip(b" \t"))
    if line[start : start + 1] != b'"':
        return _BARE_PATTERN.match(line, start).end()  # type: ignore[union-attr]: * always matches
    i = start + 1
    while i < len(line) and line[i : i + 1] != b'"':
        i += 2 if line[i : i + 1] == b"\\" else 1
    return min(i + 1, len(line))


def _driver_field(field: bytes, drivers: Sequence[bytes]) -> bool:
    kind, eq, driver = field.partition(b"=")
    return bool(eq) and kind in (b"filter", b"diff", b"merge") and driver in drivers


def switch_drivers(text: bytes, drivers: Sequence[str], to: str | None) -> tuple[bytes, int]:
    """`filter=D diff=D merge=D` (D in `drivers`) become `=to`; with `to` None they are
    removed, and so is a line left with its pattern alone. Returns the text and how many
    lines changed."""
    names = [d.encode() for d in drivers]
    out, changed = [], 0
    for line in text.splitlines(keepends=True):
        body = line.lstrip(b" \t")
        if not body.strip() or body.startswith(b"#"):
            out.append(line)
            continue
        end = _pattern_end(line)
        kept: list[bytes] = []
        edited = False
        for match in _FIELD.finditer(line, end):
            blanks, field = match.groups()
            if _driver_field(field, names):
                edited = True
                if to is None:
                    continue
                field = field.partition(b"=")[0] + b"=" + to.encode()
            kept.append(blanks + field)
        if not edited:
            out.append(line)
            continue
        changed += 1
        if kept:  # otherwise the pattern alone would say nothing: the line goes
            out.append(line[:end] + b"".join(kept) + line[len(line.rstrip(b" \t\r\n")) :])
    return b"".join(out), changed
