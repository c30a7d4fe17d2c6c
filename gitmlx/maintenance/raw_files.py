"""Files that should be pointers and are not: `fsck --pointers`, and the pre-push warning.

Owns: finding the regular files whose `filter` attribute is gitmlx's but whose blob holds
the content itself (committed on a machine without gitmlx, or with the filter switched
off), in HEAD and the index; a constant number of git processes whatever the number of
files (ls-tree / ls-files, cat-file, check-attr). The commits a push brings are checked by
the push's own scan (scan.range_pointers, `unfiltered`), which reads them anyway.
Must not: touch the store or a remote, or print.

Only `filter=mlx` counts: `filter=lfs` content belongs to Git LFS's own checks. git's and
gitmlx's configuration files (patterns.NEVER_TRACKED) are plain whatever the attributes
say, since clean passes them through.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gitmlx.format.patterns import never_tracked
from gitmlx.format.pointer import MAX_POINTER_SIZE
from gitmlx.git import attributes, scan

Entries = tuple[list[tuple[str, str, str]], dict[str, int]]  # (mode, blob, path) and blob sizes


@dataclass(frozen=True)
class RawFile:
    """A tracked path whose blob is not a pointer; `where` says in which of HEAD and the
    index ("HEAD", "index", "HEAD and index")."""

    path: str
    size: int
    where: str


def _raw(cwd: Path, listed: Entries, sources: Sequence[str | None], where: str) -> dict[str, RawFile]:
    entries, sizes = listed
    candidates = {path: sha for _, sha, path in entries if not never_tracked(path)}
    tracked: set[str] = set()
    for source in dict.fromkeys(sources):
        todo = [p for p in candidates if p not in tracked]
        if not todo:
            break
        values = attributes.filters(cwd, todo, source)
        tracked.update(p for p in todo if values[p] == "mlx")
    small = [candidates[p] for p in tracked if sizes.get(candidates[p], MAX_POINTER_SIZE) < MAX_POINTER_SIZE]
    pointers = scan.pointer_shas(cwd, small)
    return {p: RawFile(p, sizes.get(candidates[p], 0), where) for p in sorted(tracked) if candidates[p] not in pointers}


def in_head_and_index(cwd: Path, has_head: bool) -> list[RawFile]:
    """The raw files of HEAD (judged by HEAD's attributes) and of the index (by the work
    tree's, as `git add` reads them), one entry per path."""
    head = _raw(cwd, scan.files_in_tree(cwd, "HEAD"), ["HEAD"], "HEAD") if has_head else {}
    index = _raw(cwd, scan.files_in_index(cwd), [attributes.WORK_TREE], "index")
    found = dict(head)
    for path, raw in index.items():
        found[path] = RawFile(path, raw.size, "HEAD and index") if path in head else raw
    return [found[p] for p in sorted(found)]
