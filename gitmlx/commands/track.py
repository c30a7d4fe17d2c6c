"""`git mlx track [PATTERN...]` / `git mlx untrack PATTERN...`: edit `.gitattributes`.

A tracked pattern gets `filter=mlx diff=mlx merge=mlx -text`. Patterns are written to
the top-level `.gitattributes`, relative to the top; spaces become `[[:space:]]` since
gitattributes splits on whitespace.
"""

from __future__ import annotations

import os
from pathlib import Path

from gitmlx import ui
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError

ATTRIBUTES = "filter=mlx diff=mlx merge=mlx -text"


def _attributes_file(ctx: RepoContext) -> Path:
    if ctx.paths.work_tree is None:
        raise MlxError("this is a bare repository", "run 'git mlx track' in a clone with a work tree")
    return ctx.paths.work_tree / ".gitattributes"


def _encode(pattern: str, ctx: RepoContext) -> str:
    prefix = os.path.relpath(Path.cwd(), ctx.top).replace(os.sep, "/")
    if prefix != "." and not pattern.startswith("/"):
        pattern = f"{prefix}/{pattern}"
    return pattern.lstrip("/").replace(" ", "[[:space:]]")


def tracked_patterns(path: Path) -> list[str]:
    if not path.exists():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields and not line.lstrip().startswith("#") and "filter=mlx" in fields[1:]:
            found.append(fields[0])
    return found


def run_track(patterns: list[str]) -> int:
    ctx = RepoContext()
    path = _attributes_file(ctx)
    existing = tracked_patterns(path)
    if not patterns:
        if not existing:
            ui.info("no patterns tracked (add one with 'git mlx track \"*.safetensors\"')")
        for pattern in existing:
            ui.info(f"{pattern} ({path.name})")
        return 0
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    added = []
    for raw in patterns:
        pattern = _encode(raw, ctx)
        if pattern in existing or pattern in added:
            ui.info(f'"{pattern}" already tracked')
            continue
        added.append(pattern)
    if added:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "".join(f"{p} {ATTRIBUTES}\n" for p in added)
        _write(path, text)
        for pattern in added:
            ui.info(f'tracking "{pattern}"')
    return 0


def run_untrack(patterns: list[str]) -> int:
    ctx = RepoContext()
    path = _attributes_file(ctx)
    if not path.exists():
        ui.info("nothing tracked: there is no .gitattributes")
        return 0
    wanted = {_encode(p, ctx) for p in patterns}
    kept, removed = [], []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        fields = line.split()
        if fields and fields[0] in wanted and "filter=mlx" in fields[1:]:
            removed.append(fields[0])
        else:
            kept.append(line)
    _write(path, "".join(kept))
    for pattern in removed:
        ui.info(f'untracking "{pattern}"')
    for pattern in sorted(wanted - set(removed)):
        ui.warn(f'"{pattern}" was not tracked')
    return 0


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".gitattributes.mlx-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
