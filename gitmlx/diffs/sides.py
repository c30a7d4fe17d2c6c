"""One side of a diff, as git hands it over: a file holding the smudged content, or the
pointer the filter left there (skip-smudge, an excluded path, a file over
`mlx.smudgelimit`, an object that could not be fetched).

Owns: finding a pointer's object in the local store (so a diff reads the same whether or
not the work tree holds the content) and telling a side's kind, for the textconv and the
external diff driver alike.
Must not: fetch from a remote (gitmlx.api does, for tensor headers), or print.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gitmlx.diffs import summary
from gitmlx.errors import MlxError
from gitmlx.format import pointer as pointers

#: What git passes for the missing side of an added or deleted file.
DEV_NULL = "/dev/null"


@dataclass(frozen=True)
class Side:
    """`content`: a readable file with the side's content, or None when it is not local
    (then `pointer` says which object it is) or the side does not exist (`missing`)."""

    kind: str
    content: str | None
    pointer: pointers.Pointer | None = None
    missing: bool = False


def local_object(pointer: pointers.Pointer) -> Path | None:
    """The store's copy of `pointer`'s object, if it has one of the right size.

    Not re-hashed against the oid: the store names an object only after verifying it,
    `git mlx fsck` re-checks, and a diff is a display, not a checkout.
    """
    from gitmlx.context import RepoContext  # only a pointer pays for config and store

    try:
        store = RepoContext().store
        if not store.has(pointer.oid) or store.size(pointer.oid) != pointer.size:
            return None
        return store.file_path(pointer.oid)
    except (MlxError, OSError):
        return None


def resolve(path: str, name: str) -> Side:
    """The side at `path` (git's temporary file, the work-tree file or /dev/null) of the
    tracked file `name` (whose extension helps tell the kind)."""
    if path == DEV_NULL:
        return Side("missing", None, missing=True)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(summary.HEAD_SIZE)
    kind = summary.detect(name, head, size)
    if kind != "pointer":
        return Side(kind, path)
    parsed = pointers.parse(head)
    assert parsed is not None  # detect() parsed the same bytes
    local = local_object(parsed)
    if local is None:
        return Side(summary.detect(name, b"", parsed.size), None, parsed)
    with open(local, "rb") as f:
        head = f.read(summary.HEAD_SIZE)
    return Side(summary.detect(name, head, parsed.size), os.fspath(local), parsed)
