"""Path patterns for `-I/-X`, `mlx.fetchinclude`, `mlx.fetchexclude` and `checkout PATH`.

Owns: matching a repository path against such a pattern exactly as a `.gitignore` line
at the top of the repository would select it (gitignore(5)): a pattern without `/`
matches a file or folder name at any depth, one with `/` (other than a trailing one)
matches from the top, a trailing `/` matches folders only, and a pattern matching a
folder covers everything beneath it; wildcards are git's wildmatch (`wildmatch`). No
negation, comments or trailing-space trimming: a pattern is one list entry, not a line.
And deciding which tracked files a fetch wants (Selection), with the reason for each
file it does not (so commands can say what they skipped).
Must not: do I/O.

Why gitignore's reading and not gitattributes': these lists choose folders as well as
files (`-X data` has always skipped everything under `data/`, as Git LFS's fetch filters
do), and gitattributes patterns never match a folder's contents. The patterns `track`
writes are gitattributes lines, and git itself answers which paths they select
(`git.attributes`).
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from functools import lru_cache

TYPE_CHECKING = False  # type checkers take it as True
if TYPE_CHECKING:
    from gitmlx.format import wildmatch


@lru_cache(maxsize=256)
def _compile(pattern: str) -> wildmatch.Automaton | wildmatch.Never:
    """dir.c's reading of one gitignore pattern: strip one trailing '/' (folders only),
    then match the basename if no '/' is left, else the whole path from the top (one
    leading '/' dropped). The literal text before the first wildcard is compared on its
    own, as git does: wildmatch then starts after it, so a `**` right there counts as
    standing at the start (`a**/b` matches `a/x/b` in git, and here). A pattern starting
    with '#' or '!' reads as the .gitignore line that means it, `\\#...`."""
    from gitmlx.format import wildmatch  # not at module level: a clean matches no pattern

    p = pattern.encode("utf-8", "surrogateescape")
    folders_only = p.endswith(b"/")
    if folders_only:
        p = p[:-1]
    basename = b"/" not in p
    if not basename and p.startswith(b"/"):
        p = p[1:]
    if not p:
        return wildmatch.Never()
    if p[:1] in (b"#", b"!"):  # as the escaped .gitignore line `\\#...` reads (no literal prefix)
        p = b"\\" + p
    try:
        if basename:
            tokens = [(wildmatch.DIRS,), *wildmatch.tokens(p)]
        else:
            plain = next((i for i, c in enumerate(p) if c in b"*?[\\"), len(p))
            tokens = wildmatch.literal(p[:plain]) + wildmatch.tokens(p[plain:])
    except wildmatch.Malformed:
        return wildmatch.Never()
    return wildmatch.Automaton(tokens, "required" if folders_only else "optional")


def matches(path: str, pattern: str) -> bool:
    """Whether `pattern` selects `path` (a file, relative to the top, '/'-separated) or
    one of the folders it lies in."""
    return _compile(pattern).fullmatch(path.encode("utf-8", "surrogateescape"))


def any_match(path: str, patterns: Sequence[str]) -> bool:
    return any(matches(path, p) for p in patterns)


class PatternList(namedtuple("_PatternListFields", ("patterns", "origin"))):
    """Patterns (a tuple of str) and where they came from (`origin`), as messages name
    them: "-I 'data/*'" or "mlx.fetchexclude=data/* (git config --global)".

    Named tuples here, not dataclasses: the filter imports this module (docs/design.md,
    "Start-up")."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def match(self, path: str) -> bool:
        return any_match(path, self.patterns)


NONE = PatternList((), "")


class Choice(namedtuple("_ChoiceFields", ("wanted", "why"), defaults=(NONE,))):
    """A Selection's answer for one path: `wanted` (bool), and `why`, the PatternList that
    turned it away, or, for a wanted path, a configured exclude that the command line's -I
    overrode."""

    __slots__ = ()


class Selection(
    namedtuple(
        "_SelectionFields",
        ("cli_include", "cli_exclude", "config_include", "config_exclude"),
        defaults=(NONE, NONE, NONE, NONE),
    )
):
    """Which tracked files a fetch wants, from four PatternLists. The command line beats
    configuration: with -I, exactly the paths -I names minus those -X names
    (mlx.fetchinclude and mlx.fetchexclude do not apply); without, mlx.fetchinclude (if
    set) minus -X and mlx.fetchexclude."""

    __slots__ = ()

    def choose(self, path: str) -> Choice:
        if self.cli_exclude.match(path):
            if self.cli_include and not self.cli_include.match(path):
                return Choice(False, self.cli_include)
            return Choice(False, self.cli_exclude)
        if self.cli_include:
            if not self.cli_include.match(path):
                return Choice(False, self.cli_include)
            return Choice(True, self.config_exclude if self.config_exclude.match(path) else NONE)
        if self.config_include and not self.config_include.match(path):
            return Choice(False, self.config_include)
        if self.config_exclude.match(path):
            return Choice(False, self.config_exclude)
        return Choice(True)

    def unmatched(self, paths: Sequence[str]) -> list[str]:
        """The -I patterns that name none of `paths`."""
        return [p for p in self.cli_include.patterns if not any(matches(path, p) for path in paths)]


def selected(path: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """True when `path` passes the filters: in some include (or none given), in no exclude."""
    if include and not any_match(path, include):
        return False
    return not any_match(path, exclude)


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
