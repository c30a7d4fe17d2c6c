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

# A pattern compiles to a small automaton over tokens, run one path character at a time
# on the set of token positions still alive (a DFA built lazily from that NFA). Each step
# is bounded by the pattern's length, so a match costs O(len(path) * len(pattern)) at
# worst: a committed `mlx.fetchexclude` such as `**a**a**a**a**b` cannot make a checkout
# hang the way a backtracking regex does.
_LIT, _ANY, _CLASS, _STAR, _DSTAR, _DIRS, _TAIL = range(7)
#: DFA states remembered per pattern: enough for any realistic pattern; past it, new
#: transitions are computed each time (each step stays bounded by the pattern's length).
_MEMO_LIMIT = 4096


class _Matcher:
    """One compiled pattern: a DFA whose states are sets of NFA states, built as paths need
    them. An NFA state is (token index, inside): `inside` marks the middle of a
    `(?:.*/)?` run (_DIRS) or of the trailing `/...` (_TAIL)."""

    def __init__(self, tokens: list[tuple]) -> None:
        self.tokens = tokens
        self.tail = len(tokens) - 1
        self.ids: dict[frozenset, int] = {}
        self.sets: list[frozenset] = []
        self.rows: list[dict[str, int]] = []  # per DFA state: character -> next state
        self.accepting: list[bool] = []
        self.dead = self._intern(frozenset())
        self.start = self._intern(self._closure({(0, False)}))

    def _intern(self, states: frozenset) -> int:
        found = self.ids.get(states)
        if found is None:
            found = self.ids[states] = len(self.sets)
            self.sets.append(states)
            self.rows.append({})
            self.accepting.append(any(i == self.tail for i, _ in states))
        return found

    def _closure(self, states: set) -> frozenset:
        todo = list(states)
        seen = set(states)
        while todo:
            i, inside = todo.pop()
            if not inside and self.tokens[i][0] in (_STAR, _DSTAR, _DIRS):
                nxt = (i + 1, False)
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return frozenset(seen)

    def _step(self, states: frozenset, c: str) -> frozenset:
        out: set = set()
        for i, inside in states:
            kind = self.tokens[i][0]
            if kind == _LIT:
                if c == self.tokens[i][1]:
                    out.add((i + 1, False))
            elif kind == _ANY:
                if c != "/":
                    out.add((i + 1, False))
            elif kind == _CLASS:
                if self.tokens[i][1].fullmatch(c):
                    out.add((i + 1, False))
            elif kind == _STAR:
                if c != "/":
                    out.add((i, False))
            elif kind == _DSTAR:
                out.add((i, False))
            elif kind == _DIRS:
                out.add((i, True))
                if c == "/":
                    out.add((i + 1, False))
            elif inside or c == "/":  # _TAIL: "/" then anything
                out.add((i, True))
        return self._closure(out)

    def fullmatch(self, path: str) -> bool:
        state = self.start
        rows = self.rows
        for at, c in enumerate(path):
            nxt = rows[state].get(c)
            if nxt is None:
                states = self._step(self.sets[state], c)
                if len(self.sets) >= _MEMO_LIMIT and states not in self.ids:
                    return self._run(states, path[at + 1 :])
                nxt = rows[state][c] = self._intern(states)
            if nxt == self.dead:
                return False
            state = nxt
        return self.accepting[state]

    def _run(self, states: frozenset, rest: str) -> bool:
        """The rest of a match without remembering states (a pattern past _MEMO_LIMIT)."""
        for c in rest:
            if not states:
                return False
            states = self._step(states, c)
        return any(i == self.tail for i, _ in states)


@lru_cache(maxsize=256)
def _compile(pattern: str) -> _Matcher:
    try:
        return _Matcher(_tokens(pattern, classes=True))
    except re.error:  # "[]", "[z-a]", "[a\\]": no usable class, so match the text literally
        return _Matcher(_tokens(pattern, classes=False))


def _tokens(pattern: str, classes: bool) -> list[tuple]:
    anchored = "/" in pattern.rstrip("/")
    body = pattern.strip("/")
    out: list[tuple] = [] if anchored else [(_DIRS,)]
    i = 0
    while i < len(body):
        c = body[i]
        if body.startswith("**/", i):
            out.append((_DIRS,))
            i += 3
            continue
        if body.startswith("**", i):
            out.append((_DSTAR,))
            i += 2
            continue
        if c == "*":
            out.append((_STAR,))
        elif c == "?":
            out.append((_ANY,))
        elif c == "[" and classes and (end := body.find("]", i + 1)) != -1:
            # Members are literal (no regex escapes or set operators leak in); a leading
            # '!' or '^' negates, as in git's wildmatch. One character class is matched
            # against one character, which no regex engine can make slow.
            inner = body[i + 1 : end]
            negate = inner[:1] in ("!", "^")
            members = "".join(ch if ch == "-" else re.escape(ch) for ch in (inner[1:] if negate else inner))
            out.append((_CLASS, re.compile(f"[{'^' if negate else ''}{members}]")))
            i = end
        else:
            out.append((_LIT, c))
        i += 1
    out.append((_TAIL,))
    return out


def matches(path: str, pattern: str) -> bool:
    return _compile(pattern).fullmatch(path)


#: The attributes `git mlx track` (and `migrate import`) give a tracked pattern.
TRACK_ATTRIBUTES = "filter=mlx diff=mlx merge=mlx -text"

#: Files git, gitmlx or Git LFS read as configuration from a checkout. As pointers they
#: would break every clone (a `.gitattributes` pointer holds none of the filter lines that
#: say which files to restore), so clean passes them through whatever the attributes say
#: and `track` writes an exclusion for them.
NEVER_TRACKED = (".gitattributes", ".gitignore", ".gitmodules", ".mailmap", ".mlxconfig", ".lfsconfig")


def never_tracked(path: str) -> bool:
    """Whether `path` (relative to the top, '/'-separated) is one of NEVER_TRACKED, at any depth."""
    return path.rpartition("/")[2] in NEVER_TRACKED


def selected(path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """True when `path` passes the filters: in some include (or none given), in no exclude."""
    if include and not any(matches(path, p) for p in include):
        return False
    return not any(matches(path, p) for p in exclude)
