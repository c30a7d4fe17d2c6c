"""Writing files into git's object database as blobs: `git hash-object -w --stdin-paths`.

Owns: one git process for any number of files, each stored byte for byte (`--no-filters`:
no attribute may turn it back into a pointer), and the blob ids git answers with.
Must not: know where the files come from or what the blobs are for.

Paths rather than a stream on stdin: git streams a large file given by path straight into
a pack (core.bigFileThreshold), while content piped to `--stdin` is read whole into memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from gitmlx.errors import MlxError
from gitmlx.git.plumbing import run_git


def write_blobs(top: Path, files: Sequence[Path]) -> list[bytes]:
    """Store each file as a blob in the repository at `top`; their ids (hex), in order."""
    if not files:
        return []
    names = [os.fsencode(path.resolve()) for path in files]
    if any(b"\n" in name for name in names):
        raise MlxError("a file to store in git has a line feed in its path", "move the store to a plain path")
    out = run_git(["hash-object", "-w", "--no-filters", "--stdin-paths"], cwd=top, input=b"\n".join(names) + b"\n")
    ids = out.split()
    if len(ids) != len(files):
        raise MlxError(f"git hash-object stored {len(ids)} of {len(files)} files", "run the command again")
    return ids
