"""git's wildmatch (the `WM_PATHNAME` flavour gitignore and gitattributes use), run as an
automaton instead of by backtracking.

Owns: reading a wildmatch pattern the way git's wildmatch.c does (`*` and `?` stop at
'/', `**` spans folders only between slashes or at an end, bracket expressions with
ranges, `\\` escapes and `[:class:]` names, a malformed bracket matching nothing) and
matching byte strings against it.
Must not: know about gitignore's or gitattributes' layering (basenames, leading and
trailing '/', parent folders: `patterns` does that), or do I/O.

Why an automaton: a pattern is user or repository input (a committed `mlx.fetchexclude`),
and a backtracking matcher is exponential on `**a**a**a...b`. Here a pattern compiles to a
list of tokens, and matching runs the set of token positions still alive one path byte at
a time, as the bits of an integer (a DFA built lazily from that NFA), so a match costs at
most O(len(path) * len(pattern) / word size), with the DFA states a pattern remembers capped.
"""

from __future__ import annotations

from collections.abc import Iterable

#: Token kinds. LIT carries a 256-entry table of the bytes it accepts (one byte, `?` or a
#: bracket); STAR is `[^/]*`, DSTAR is `.*`, DIRS is `(.*/)?` (git's `**/`, which may also
#: match no folder).
LIT, STAR, DSTAR, DIRS = range(4)
Token = tuple  # (kind,) or (LIT, table)

_SLASH = ord("/")
#: DFA states remembered per pattern: enough for any realistic pattern; past it, new
#: transitions are computed each time (each step stays bounded by the pattern's length).
MEMO_LIMIT = 4096


def _table(accepts: Iterable[int]) -> bytes:
    table = bytearray(256)
    for b in accepts:
        table[b] = 1
    return bytes(table)


def _ascii(test) -> frozenset[int]:
    return frozenset(c for c in range(128) if test(c))


_PUNCT = _ascii(lambda c: 33 <= c <= 47 or 58 <= c <= 64 or 91 <= c <= 96 or 123 <= c <= 126)
#: git's own ctype (ctype.c, "sane_ctype"), ASCII only: bytes past 127 are in no class.
#: Its "space" is tab, LF, CR and space (no VT or FF); blank and graph come from the C library.
CLASSES: dict[bytes, frozenset[int]] = {
    b"alnum": _ascii(lambda c: chr(c).isalnum()),
    b"alpha": _ascii(lambda c: chr(c).isalpha()),
    b"blank": frozenset(b" \t"),
    b"cntrl": _ascii(lambda c: c < 32 or c == 127),
    b"digit": _ascii(lambda c: chr(c).isdigit()),
    b"graph": _ascii(lambda c: 33 <= c <= 126),
    b"lower": _ascii(lambda c: chr(c).islower()),
    b"print": _ascii(lambda c: 32 <= c <= 126),
    b"punct": _PUNCT,
    b"space": frozenset(b" \t\n\r"),
    b"upper": _ascii(lambda c: chr(c).isupper()),
    b"xdigit": frozenset(b"0123456789abcdefABCDEF"),
}


class Malformed(ValueError):
    """A bracket expression git's wildmatch aborts on: the pattern matches nothing."""


def _escaped(p: bytes, i: int) -> tuple[int, int]:
    """The byte at p[i], or the one after it if p[i] is a backslash: (byte, its index)."""
    if p[i] == ord("\\"):
        i += 1
        if i >= len(p):
            raise Malformed("escape at the end")
    return p[i], i


def _bracket(p: bytes, i: int) -> tuple[bytes, int]:
    """The bracket expression starting after the '[' at p[i-1]: (table of the bytes it
    accepts, index just past its ']'). Mirrors wildmatch.c's loop, including its corners:
    a ']' first is a member, `\\` escapes the next byte, a '-' between two members makes a
    range (but not first or last), `[:name:]` names a class, and a `[:` without a closing
    `:]` is a plain '['."""
    n = len(p)
    negated = i < n and p[i] in b"!^"
    if negated:
        i += 1
    members: set[int] = set()
    prev = 0  # wildmatch.c's prev_ch: 0 after a range or a class, so no range follows it
    first = True
    while first or (i < n and p[i] != ord("]")):
        first = False
        if i >= n:
            raise Malformed("unterminated bracket")
        c = p[i]
        if c == ord("\\"):
            c, i = _escaped(p, i)
            members.add(c)
        elif c == ord("-") and prev and i + 1 < n and p[i + 1] != ord("]"):
            c, i = _escaped(p, i + 1)
            members.update(range(prev, c + 1))
            c = 0
        elif c == ord("[") and i + 1 < n and p[i + 1] == ord(":"):
            end = p.find(b"]", i + 2)
            if end == -1:
                raise Malformed("unterminated class")
            name = p[i + 2 : end]
            if not name.endswith(b":"):
                members.add(c)  # "[:" with no ":]": a plain '[', scanning resumes after it
            else:
                if name[:-1] not in CLASSES:
                    raise Malformed(f"unknown class {name[:-1]!r}")
                members.update(CLASSES[name[:-1]])
                i = end
                c = 0
        else:
            members.add(c)
        prev = c
        i += 1
    if i >= n:
        raise Malformed("unterminated bracket")
    accepted = set(range(256)) - members if negated else members
    accepted.discard(_SLASH)
    return _table(accepted), i + 1


def tokens(p: bytes) -> list[Token]:
    """The tokens of wildmatch pattern `p` (WM_PATHNAME).
    Raises Malformed for a pattern git's wildmatch never lets match."""
    out: list[Token] = []
    i, n = 0, len(p)
    while i < n:
        c = p[i]
        if c == ord("*"):
            j = i
            while j < n and p[j] == ord("*"):
                j += 1
            at_start = i == 0 or p[i - 1] == _SLASH
            double = j - i >= 2 and at_start
            if double and j < n and p[j] == _SLASH:
                if not out or out[-1][0] != DIRS:  # `**/**/` is `**/`
                    out.append((DIRS,))
                j += 1
            elif double and (j == n or p[j : j + 2] == b"\\/"):
                out.append((DSTAR,))
            else:
                out.append((STAR,))
            i = j
            continue
        if c == ord("?"):
            out.append((LIT, _ANY_BUT_SLASH))
        elif c == ord("["):
            table, i = _bracket(p, i + 1)
            out.append((LIT, table))
            continue
        else:
            c, i = _escaped(p, i)
            out.append((LIT, _ONE[c]))
        i += 1
    return out


_ANY_BUT_SLASH = _table(b for b in range(256) if b != _SLASH)
_ONE = [_table((b,)) for b in range(256)]


def literal(p: bytes) -> list[Token]:
    return [(LIT, _ONE[c]) for c in p]


class Automaton:
    """A token list run as a bit-parallel NFA: bit i of `on` is "at token i", bit i of
    `inside` is "in the middle of token i" (a DIRS run, or past the TAIL's '/' that the
    gitignore layering appends: "or anything beneath it"). A step is a dozen operations on
    integers of one bit per token, whatever the pattern, so a match costs O(len(path) *
    len(pattern) / word size); the states a pattern meets are remembered as a DFA, up to
    MEMO_LIMIT of them."""

    def __init__(self, toks: list[Token], tail: str = "none") -> None:
        """`tail`: "none" (the pattern must end the string), "optional" (or be followed by
        '/' and anything) or "required" ('/' and anything must follow)."""
        by_table: dict[bytes, int] = {}  # LIT tokens by the bytes they accept
        stars = dstars = dirs = 0
        for i, token in enumerate(toks):
            bit = 1 << i
            if token[0] == LIT:
                by_table[token[1]] = by_table.get(token[1], 0) | bit
            elif token[0] == STAR:
                stars |= bit
            elif token[0] == DSTAR:
                dstars |= bit
            elif token[0] == DIRS:
                dirs |= bit
        self.advance = [0] * 256  # per byte: the LIT tokens that accept it
        for table, mask in by_table.items():
            for b, ok in enumerate(table):
                if ok:
                    self.advance[b] |= mask
        self.stars, self.dstars, self.dirs = stars, dstars, dirs
        self.epsilon = stars | dstars | dirs  # tokens that may match nothing
        self.tail = 1 << len(toks)
        self.tail_slash = 0 if tail == "none" else self.tail
        self.tail_accepts = tail != "required"
        self.ids: dict[tuple[int, int], int] = {}
        self.states: list[tuple[int, int]] = []
        self.rows: list[dict[int, int]] = []
        self.dead = self._intern((0, 0))
        self.start = self._intern((self._closure(1), 0))

    def _intern(self, state: tuple[int, int]) -> int:
        found = self.ids.get(state)
        if found is None:
            found = self.ids[state] = len(self.states)
            self.states.append(state)
            self.rows.append({})
        return found

    def _closure(self, on: int) -> int:
        # Runs of tokens that may match nothing are short (`tokens` merges `**/**/`), so
        # this loops a few times at most.
        while True:
            more = (on & self.epsilon) << 1
            if not more & ~on:
                return on
            on |= more

    def _step(self, state: tuple[int, int], c: int) -> tuple[int, int]:
        on, inside = state
        nxt = ((on & self.advance[c]) << 1) | (on & self.dstars)
        in_dirs = (on | inside) & self.dirs
        stay = in_dirs | (inside & self.tail_slash)
        if c == _SLASH:
            nxt |= in_dirs << 1
            stay |= on & self.tail_slash
        else:
            nxt |= on & self.stars
        return self._closure(nxt), stay

    def _accepts(self, state: tuple[int, int]) -> bool:
        on, inside = state
        return bool(inside & self.tail_slash or (self.tail_accepts and on & self.tail))

    def fullmatch(self, text: bytes) -> bool:
        at = self.start
        rows = self.rows
        for pos, c in enumerate(text):
            nxt = rows[at].get(c)
            if nxt is None:
                state = self._step(self.states[at], c)
                if len(self.states) >= MEMO_LIMIT and state not in self.ids:
                    return self._run(state, text[pos + 1 :])
                nxt = rows[at][c] = self._intern(state)
            if nxt == self.dead:
                return False
            at = nxt
        return self._accepts(self.states[at])

    def _run(self, state: tuple[int, int], rest: bytes) -> bool:
        """The rest of a match without remembering states (a pattern past MEMO_LIMIT)."""
        for c in rest:
            if state == (0, 0):
                return False
            state = self._step(state, c)
        return self._accepts(state)


class Never:
    """The automaton of a pattern that matches nothing (git aborts on it)."""

    def fullmatch(self, text: bytes) -> bool:
        return False
