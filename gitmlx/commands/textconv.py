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

from gitmlx.errors import MlxError, UsageError


def run(*, path: str) -> int:
    if not path:
        raise UsageError("'textconv' needs a FILE", "git runs it as diff.mlx.textconv; see 'git mlx install'")
    from gitmlx.diffs import summary as diffs
    from gitmlx.diffs.sides import local_object

    out = sys.stdout.buffer
    try:
        for line in diffs.summarize(path, resolve=local_object):
            out.write(line.encode("utf-8", "backslashreplace") + b"\n")
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise MlxError(
            f"cannot read '{path}': {exc.strerror or exc}", "check the file exists and is readable"
        ) from None
    out.flush()
    return 0
