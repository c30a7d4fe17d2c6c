"""git as the oracle for path patterns: which (pattern, path) pairs git's own matching
selects, asked in one `git check-ignore` for any number of pairs.

Owns: laying out one folder per pattern, each with a `.gitignore` holding that pattern
alone, and asking `git check-ignore --no-index -z -v -n --stdin` about `<folder>/<path>`:
a pattern in a folder's `.gitignore` is read relative to that folder exactly as one at
the top is read relative to the top, so each answer is what that single pattern selects.
The leaf of each path is a file (nothing exists on disk, so a folder-only pattern cannot
match it) and its leading components are folders, as in a repository's tree.
Must not: import gitmlx.

Why check-ignore: `-I/-X` and `mlx.fetch*` patterns are read as `.gitignore` lines (see
gitmlx.format.patterns), and check-ignore is git's answer to exactly "does this line
select this path or a folder above it". `--no-index` keeps the index out of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tests.support.commands import git


def gitignore_line(pattern: str) -> str:
    """`pattern` as a .gitignore line meaning the same: a leading '#' or '!' escaped (a
    comment, a negation). Trailing spaces cannot be kept this way: callers avoid them."""
    if pattern.endswith(" "):
        raise ValueError("a .gitignore line drops trailing spaces")
    return "\\" + pattern if pattern[:1] in ("#", "!") else pattern


def check_ignore(root: Path, pairs: Sequence[tuple[str, str]]) -> list[bool]:
    """For each (pattern, path): whether git selects `path` with that single pattern."""
    root.mkdir(parents=True, exist_ok=True)
    git("init", "-q", str(root), cwd=root)
    folders: dict[str, str] = {}
    for pattern, _ in pairs:
        if pattern not in folders:
            folder = folders[pattern] = f"p{len(folders)}"
            (root / folder).mkdir()
            line = gitignore_line(pattern).encode("utf-8", "surrogateescape")
            (root / folder / ".gitignore").write_bytes(line + b"\n")
    stdin = b"".join(f"{folders[pattern]}/{path}".encode("utf-8", "surrogateescape") + b"\0" for pattern, path in pairs)
    out = git("check-ignore", "--no-index", "-z", "-v", "-n", "--stdin", cwd=root, input=stdin, check=False)
    assert out.returncode in (0, 1), str(out)
    fields = out.stdout.encode("utf-8", "surrogateescape").split(b"\0")
    assert len(fields) >= 4 * len(pairs), str(out)[:2000]
    return [fields[4 * i] != b"" for i in range(len(pairs))]
