"""Which paths git runs through gitmlx: the `filter` attribute, asked of git.

Owns: one `git check-attr -z --stdin filter` per attribute source for any number of paths,
as the work tree says or as a given commit or tree says; and PatternMatcher, which asks
git path by path which of them given patterns select.
Must not: read blobs, parse pointers, or touch the store.

A blob that parses as a pointer is an artifact only where git would smudge it, that is
where its path's `filter` attribute names gitmlx's driver (gitattributes(5), "filter").
Pointer text anywhere else (an example in the docs, a test fixture) is ordinary content.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from gitmlx.format.patterns import never_tracked
from gitmlx.git.plumbing import GitError, GitProcess, run_git

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from typing import IO

#: `filter` values under which a pointer blob is an artifact: gitmlx's own, and Git LFS's,
#: since `git mlx migrate from-lfs` points the `lfs` driver at gitmlx and the commits made
#: before the migration still say `filter=lfs` (docs/migration.md).
ARTIFACT_FILTERS = frozenset({"mlx", "lfs"})

#: The attribute source "the work tree": its .gitattributes files, then the index's where
#: the work tree has none, as `git add` and `git status` read them.
WORK_TREE = None


def _encode(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def parse_check_attr(out: bytes, paths: Sequence[str]) -> dict[str, str]:
    """`check-attr -z` output for one attribute: `<path> NUL <attr> NUL <value> NUL` per path,
    in the order the paths were given. Maps each path to its value ("unspecified", "unset",
    "set" or the value itself)."""
    # Field by field, not `out.split`, and each distinct value decoded once: for 100,000
    # paths the split alone held 300,000 bytes objects, and the answers as many strings.
    values: dict[bytes, str] = {}
    answers: dict[str, str] = {}
    start = 0
    for path in paths:
        first = out.find(b"\0", start)  # after the path
        second = out.find(b"\0", first + 1) if first >= 0 else -1  # after the attribute name
        end = out.find(b"\0", second + 1) if second >= 0 else -1  # after the value
        if end < 0:
            raise GitError(f"git check-attr failed: {len(answers)} answers for {len(paths)} paths")
        raw = out[second + 1 : end]
        value = values.get(raw)
        if value is None:
            value = values[raw] = raw.decode("utf-8", "surrogateescape")
        answers[path] = value
        start = end + 1
    if start != len(out):
        raise GitError(f"git check-attr failed: more answers than the {len(paths)} paths asked")
    return answers


def _check_attr(cwd: Path, paths: Sequence[str], cached: bool, env: dict[str, str] | None = None) -> dict[str, str]:
    args = ["check-attr", *(["--cached"] if cached else []), "-z", "--stdin", "filter"]
    stdin = ("\0".join(paths) + "\0").encode("utf-8", "surrogateescape") if paths else b""
    return parse_check_attr(run_git(args, cwd=cwd, input=stdin, env=env), paths)


def filters(cwd: Path, paths: Sequence[str], source: str | None = WORK_TREE) -> dict[str, str]:
    """The `filter` attribute of each of `paths` (relative to the top), in one check-attr.

    `source` is a commit or tree whose own .gitattributes decide (plus `$GIT_DIR/info/
    attributes` and `core.attributesFile`, as always), or WORK_TREE. git 2.40's
    `check-attr --source` is not there in older gits, so a tree is read into a temporary
    index first (`read-tree`, then `check-attr --cached`): two git processes, whatever the
    number of paths. A source git cannot read as a tree falls back to the work tree.
    """
    if not paths:
        return {}
    if source is WORK_TREE:
        return _check_attr(cwd, paths, cached=False)
    with tempfile.TemporaryDirectory(prefix="gitmlx-attr-") as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": os.path.join(tmp, "index")}
        try:
            run_git(["read-tree", source], cwd=cwd, env=env)
        except GitError:
            return _check_attr(cwd, paths, cached=False)
        return _check_attr(cwd, paths, cached=True, env=env)


def filters_by_source(cwd: Path, paths: Sequence[str], sources: Sequence[str | None]) -> dict[str, set[str]]:
    """The `filter` values each of `paths` has in any of `sources` (one check-attr per
    source): for a caller that asks two questions of the same paths at once."""
    found: dict[str, set[str]] = {p: set() for p in paths}
    for source in dict.fromkeys(sources):
        for path, value in filters(cwd, list(found), source).items():
            found[path].add(value)
    return found


def tracked(cwd: Path, paths: Iterable[str], sources: Sequence[str | None] = (WORK_TREE,)) -> set[str]:
    """Those of `paths` whose `filter` is gitmlx's (or Git LFS's) in at least one source.
    git's own configuration files never are: clean passes them through (patterns.NEVER_TRACKED)."""
    todo = [p for p in dict.fromkeys(paths) if not never_tracked(p)]
    found: set[str] = set()
    for source in dict.fromkeys(sources):
        if not todo:
            break
        values = filters(cwd, todo, source)
        found.update(p for p in todo if values[p] in ARTIFACT_FILTERS)
        todo = [p for p in todo if p not in found]
    return found


class PatternMatcher:
    """Which paths a list of gitattributes patterns selects, asked of git one path at a time.

    For a history rewrite, which meets paths commit by commit and will write these
    patterns into each commit's .gitattributes: the patterns go into a private attributes
    file (`core.attributesFile`) under an attribute name nothing else sets, so the answer
    is exactly what those lines select, by git's own matching. One `check-attr --stdin`
    stays open until close(); each path is asked once.
    """

    ATTR = "gitmlx-pattern-match"

    def __init__(self, cwd: Path, patterns: Sequence[str]) -> None:
        fd, self._file = tempfile.mkstemp(prefix="gitmlx-patterns-", suffix=".attributes")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("".join(f"{p} {self.ATTR}\n" for p in patterns))
            args = ["-c", f"core.attributesFile={self._file}", "check-attr", "--stdin", "-z", self.ATTR]
            self._git = GitProcess(args, cwd)
        except BaseException:
            os.unlink(self._file)
            raise
        self._answers: dict[bytes, bool] = {}

    def close(self) -> None:
        self._git.close()
        os.unlink(self._file)

    def __call__(self, path: bytes) -> bool:
        """Whether a pattern selects `path` (relative to the top, '/'-separated)."""
        if path not in self._answers:
            out = self._git.ask(path + b"\0")
            _path, _attr, value = (_read_field(out) for _ in range(3))
            self._answers[path] = value == b"set"
        return self._answers[path]


def _read_field(stream: IO[bytes]) -> bytes:
    """One NUL-terminated field of `check-attr -z` output."""
    parts = []
    while (c := stream.read(1)) not in (b"\0", b""):
        parts.append(c)
    return b"".join(parts)
