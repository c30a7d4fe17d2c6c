"""Long histories built fast, through gitmlx's own clean filter.

Owns: writing N commits of small artifacts in a handful of git processes: every version
of every file is cleaned by one `git hash-object -w --stdin-paths` (one filter process
stores the objects and returns the pointer blobs), and one `git fast-import` writes the
commits. bench/history.py builds its repositories with it too, at larger sizes.
Must not: import gitmlx.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.commands import git


@dataclass(frozen=True)
class HistoryShape:
    """`commits` commits; the first writes `files` artifacts, each later one changes
    `changed` of them; each version is `sizes` bytes (a range, pseudo-random content);
    commit dates start at `start` (seconds since the epoch), `spacing` seconds apart."""

    commits: int
    files: int = 10
    changed: int = 2
    sizes: tuple[int, int] = (1024, 2048)
    start: int = 1_700_000_000
    spacing: int = 60
    seed: int = 0


def build_history(work: Path, shape: HistoryShape, env: Mapping[str, str] | None = None) -> None:
    """Add `shape`'s commits to `work`'s current branch (its tracked patterns must match
    `*.bin`); the work tree and index end at the new tip. `env`: added to git's."""
    rng = random.Random(shape.seed)
    names = [f"h{i:03}.bin" for i in range(shape.files)]
    plan = [names] + [rng.sample(names, shape.changed) for _ in range(shape.commits - 1)]
    scratch = work / "history-versions"
    paths = []
    for c, chosen in enumerate(plan):
        for name in chosen:
            path = scratch / str(c) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rng.randbytes(rng.randint(*shape.sizes)))
            paths.append(path.relative_to(work).as_posix())
    listed = "\n".join(paths).encode() + b"\n"
    blobs = git("hash-object", "-w", "--stdin-paths", cwd=work, input=listed, env=env).stdout.split()
    shutil.rmtree(scratch)
    branch = git("symbolic-ref", "HEAD", cwd=work, env=env).stdout.strip()
    tip = git("rev-parse", "HEAD", cwd=work, env=env).stdout.strip()
    stream = []
    blob = iter(blobs)
    for c, chosen in enumerate(plan):
        message = f"history {c}"
        when = shape.start + c * shape.spacing
        stream.append(f"commit {branch}\ncommitter t <t@example.invalid> {when} +0000\n")
        stream.append(f"data {len(message)}\n{message}\n" + (f"from {tip}\n" if c == 0 else ""))
        stream += [f"M 100644 {next(blob)} {name}\n" for name in chosen]
        stream.append("\n")
    git("fast-import", "--quiet", cwd=work, input="".join(stream).encode(), env=env)
    git("reset", "-q", "--hard", branch, cwd=work, env=env)
