"""`git mlx textconv FILE`: the `diff=mlx` driver (`diff.mlx.textconv`).

Git runs it once per side of a diff on a file holding that side's content (the work-tree
file, or a temporary file with the *smudged* blob) and diffs the two outputs, so
`git diff`, `git log -p` and `git show` print which tensors, arrays or rows changed
instead of "Binary files differ". See docs/diff-driver.md.

A pointer (skip-smudge, an excluded path, a file over `mlx.smudgelimit` that the filter
checks out as its pointer, an object that could not be fetched) is summarised as the
object it names when that object is in the local store, so the diff is the same whether
or not the work tree holds the content; otherwise as the pointer itself.

The summary goes to stdout as UTF-8: it is this command's whole output, like a filter's
content, so it is written here rather than through `ui`. Bad content never fails the
command (git would abort the whole diff); only an unreadable FILE does.
Must not: import click, tqdm, boto3 or pygit2 (git starts it once per file per diff).
"""

from __future__ import annotations

import sys
from pathlib import Path

from gitmlx.errors import MlxError, UsageError
from gitmlx.format.pointer import Pointer


def run(*, path: str) -> int:
    if not path:
        raise UsageError("'textconv' needs a FILE", "git runs it as diff.mlx.textconv; see 'git mlx install'")
    from gitmlx.diffs import summary as diffs

    out = sys.stdout.buffer
    try:
        for line in diffs.summarize(path, resolve=_local_object):
            out.write(line.encode("utf-8", "backslashreplace") + b"\n")
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise MlxError(
            f"cannot read '{path}': {exc.strerror or exc}", "check the file exists and is readable"
        ) from None
    out.flush()
    return 0


def _local_object(pointer: Pointer) -> Path | None:
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
