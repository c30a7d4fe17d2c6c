"""Installing gitmlx's git hooks into a repository, and removing them again.

Owns: where hooks go (git's own answer, so `core.hooksPath` is honoured), recognising
gitmlx's hooks by their stamp line, and keeping a foreign hook by chaining it.
Must not: decide policy for the user; callers choose `force`.

The scripts themselves live in the top-level `hooks/` folder of the source tree (shipped
inside the package as `gitmlx/_hooks`). A foreign hook is renamed to `<name>.pre-mlx`,
which gitmlx's hook runs first; uninstall puts it back.
"""

from __future__ import annotations

import os
from pathlib import Path

from gitmlx.git.plumbing import run_git

HOOK_NAMES = ("pre-push", "post-checkout", "post-merge", "post-commit")
STAMP = "# gitmlx-hook"
CHAINED_SUFFIX = ".pre-mlx"


def _templates_dir() -> Path:
    packaged = Path(__file__).resolve().parent.parent / "_hooks"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "hooks"


def template(name: str) -> str:
    return (_templates_dir() / name).read_text()


def hooks_dir(cwd: Path) -> Path:
    """`git rev-parse --git-path hooks`: the common dir's hooks, or core.hooksPath."""
    out = run_git(["rev-parse", "--git-path", "hooks"], cwd=cwd).decode().strip()
    path = Path(out)
    return path if path.is_absolute() else (cwd / path).resolve()


def is_ours(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return STAMP in f.read(4096)
    except OSError:
        return False


class HookReport:
    """What `install_hooks` did: hook names written, hook names chained after a foreign
    hook, and foreign hooks it refused to touch. A plain class: git runs the hooks module
    on every checkout, and `dataclasses` would double its import time."""

    def __init__(self) -> None:
        self.installed: list[str] = []
        self.chained: list[str] = []
        self.refused: list[Path] = []


def install_hooks(
    cwd: Path, force: bool = False, only_missing: bool = False, directory: Path | None = None
) -> HookReport:
    """Write gitmlx's hooks. A foreign hook is chained with `force`, else refused.

    `only_missing` is the filters' quiet mode (as Git LFS does on smudge): create hooks
    that do not exist, touch nothing else. `directory` spares the git process that finds
    the hooks folder when the caller knows it.
    """
    report = HookReport()
    directory = directory or hooks_dir(cwd)
    for name in HOOK_NAMES:
        path = directory / name
        present = path.exists() or path.is_symlink()
        if present and only_missing:
            continue  # before reading the template: the filter checks at every exit
        wanted = template(name)
        if present:
            if is_ours(path):
                if path.read_text(errors="replace") == wanted:
                    continue
            elif not force:
                report.refused.append(path)
                continue
            else:
                os.replace(path, path.with_name(name + CHAINED_SUFFIX))
                report.chained.append(name)
        _write_hook(path, wanted)
        report.installed.append(name)
    return report


def _write_hook(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.mlx-tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.chmod(0o755)
    try:
        os.link(tmp, path)  # fails if another process created the hook meanwhile
    except FileExistsError:
        if not is_ours(path):
            tmp.unlink()
            return
        os.replace(tmp, path)
        return
    tmp.unlink()


def uninstall_hooks(cwd: Path) -> list[str]:
    """Remove gitmlx's hooks, restoring chained foreign ones; foreign hooks stay."""
    removed = []
    directory = hooks_dir(cwd)
    for name in HOOK_NAMES:
        path = directory / name
        if path.exists() and is_ours(path):
            path.unlink()
            removed.append(name)
            chained = directory / (name + CHAINED_SUFFIX)
            if chained.exists():
                os.replace(chained, path)
    return removed
