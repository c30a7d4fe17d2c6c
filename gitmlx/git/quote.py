"""Paths printed the way git prints them (quote.c, `quote_c_style`).

Owns: quoting a path for one line of human-readable output: a name with a control
character, a double quote, a backslash or (with core.quotePath, git's default) a byte
above 0x7f is printed in double quotes with C escapes, so a newline in a file name
cannot split one entry into two lines. `-z` output needs no quoting at all.
Must not: do I/O.
"""

from __future__ import annotations

_ESCAPES = {7: b"a", 8: b"b", 9: b"t", 10: b"n", 11: b"v", 12: b"f", 13: b"r", 34: b'"', 92: b"\\"}


def quote_path(path: str, quote_non_ascii: bool = True) -> str:
    """`path` as git shows it: unchanged when it needs no quoting, else "C-quoted"."""
    raw = path.encode("utf-8", "surrogateescape")

    def special(b: int) -> bool:
        return b < 0x20 or b in (0x22, 0x5C, 0x7F) or (quote_non_ascii and b >= 0x80)

    if not any(special(b) for b in raw):
        return path
    out = bytearray(b'"')
    for b in raw:
        if b in _ESCAPES:
            out += b"\\" + _ESCAPES[b]
        elif special(b):
            out += b"\\%03o" % b
        else:
            out.append(b)
    out += b'"'
    return out.decode("utf-8", "surrogateescape")
