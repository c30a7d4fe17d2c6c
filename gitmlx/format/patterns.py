"""Path patterns for `-I/-X`, `mlx.fetchinclude` and `mlx.fetchexclude`.

Owns: matching a repository path against include/exclude lists, the way Git LFS's
fetch filters read them: a pattern without `/` matches a file or folder name at any
depth, one with `/` matches from the top, and a pattern naming a folder covers
everything beneath it. `*`, `?` and `[...]` are fnmatch wildcards; `**` spans folders.
Must not: do I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache


@lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(_translate(pattern, classes=True))
    except re.error:  # "[]", "[z-a]", "[a\\]": no usable class, so match the text literally
        return re.compile(_translate(pattern, classes=False))


def _translate(pattern: str, classes: bool) -> str:
    anchored = "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if body.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and classes:
            end = body.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                # Members are literal (no regex escapes or set operators leak in); a leading
                # '!' or '^' negates, as in git's wildmatch.
                inner = body[i + 1 : end]
                negate = inner[:1] in ("!", "^")
                members = "".join(ch if ch == "-" else re.escape(ch) for ch in (inner[1:] if negate else inner))
                out.append(f"[{'^' if negate else ''}{members}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return f"{prefix}{''.join(out)}(?:/.*)?"


#: Files git, gitmlx or Git LFS read as configuration from a checkout. As pointers they
#: would break every clone (a `.gitattributes` pointer holds none of the filter lines that
#: say which files to restore), so clean passes them through whatever the attributes say
#: and `track` writes an exclusion for them.
NEVER_TRACKED = (".gitattributes", ".gitignore", ".gitmodules", ".mailmap", ".mlxconfig", ".lfsconfig")


def never_tracked(path: str) -> bool:
    """Whether `path` (relative to the top, '/'-separated) is one of NEVER_TRACKED, at any depth."""
    return path.rpartition("/")[2] in NEVER_TRACKED


def matches(path: str, pattern: str) -> bool:
    return _compile(pattern).fullmatch(path) is not None


def selected(path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """True when `path` passes the filters: in some include (or none given), in no exclude."""
    if include and not any(matches(path, p) for p in include):
        return False
    return not any(matches(path, p) for p in exclude)
