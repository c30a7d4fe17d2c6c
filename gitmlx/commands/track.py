"""`git mlx track [PATTERN...]` / `git mlx untrack PATTERN...`: edit `.gitattributes`.

A tracked pattern gets `filter=mlx diff=mlx merge=mlx -text`. Patterns are written to
the top-level `.gitattributes`, relative to the top; spaces become `[[:space:]]` since
gitattributes splits on whitespace.

A pattern that also covers a file git reads as configuration (`track "*"` covers
`.gitattributes` itself) gets, at the end of the file, an exclusion line for each such
name (`.gitattributes !filter !diff !merge !text`), with a warning: later lines win in
gitattributes, so the exclusions move to the end whenever patterns are added. git is
asked which names the patterns cover (check-attr), not a reimplementation of its matching.
"""

from __future__ import annotations

import os
from pathlib import Path

from gitmlx import ui
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError
from gitmlx.format.patterns import NEVER_TRACKED, TRACK_ATTRIBUTES
from gitmlx.git import attributes

EXCLUSION = "!filter !diff !merge !text"


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


def run_track(*, patterns: list[str]) -> int:
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
        before, text = text, _without_exclusions(text)
        if text and not text.endswith("\n"):
            text += "\n"
        text += "".join(f"{p} {TRACK_ATTRIBUTES}\n" for p in added)
        _write(path, text)
        for pattern in added:
            ui.info(f'tracking "{pattern}"')
        _exclude_configuration(ctx, path, text, before)
    return 0


def _exclusion(name: str) -> str:
    return f"{name} {EXCLUSION}\n"


def _without_exclusions(text: str) -> str:
    lines = text.splitlines(keepends=True)
    ours = {_exclusion(name) for name in NEVER_TRACKED}
    return "".join(line for line in lines if line not in ours)


def _exclude_configuration(ctx: RepoContext, path: Path, text: str, before: str) -> None:
    """Append an exclusion for each configuration file the tracked patterns cover; warn
    about those not excluded `before`."""
    covered = attributes.filters(ctx.top, list(NEVER_TRACKED))
    names = [name for name in NEVER_TRACKED if covered[name] == "mlx"]
    if not names:
        return
    _write(path, text + "".join(_exclusion(name) for name in names))
    new = [name for name in names if _exclusion(name) not in before.splitlines(keepends=True)]
    if new:
        ui.warn(
            f"the tracked patterns cover {', '.join(new)}, which git needs as plain files: "
            f"excluded at the end of {path.name}"
        )


def run_untrack(*, patterns: list[str]) -> int:
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
