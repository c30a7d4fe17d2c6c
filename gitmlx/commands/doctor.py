"""`git mlx doctor`: check that this machine and repository are set up for gitmlx, and say
what to fix.

Owns: the list of checks and their wording. Each check looks, never changes anything
(the local store's folder excepted: it is created as the first command would) and never
prints a credential, only where boto3's chain found one.
Must not: repair; every finding names the command that does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitmlx import ui
from gitmlx.config import git_settings
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError, NotARepository
from gitmlx.git import hooks, plumbing
from gitmlx.remotes.local import LocalRemote


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    message: str
    fix: str = ""


def run() -> int:
    try:
        ctx: RepoContext | None = RepoContext()
    except NotARepository:
        ctx = None
    findings = [check_program(), check_filters(ctx)]
    if ctx is None:
        findings.append(Finding("repository", True, "not in a repository: hooks, remote and store not checked"))
    else:
        findings += [check_hooks(ctx), check_store(ctx), *check_remote(ctx)]
    for f in findings:
        ui.info(f"{'ok' if f.ok else 'FAIL':<4}  {f.check}: {f.message}")
        if f.fix:
            ui.info(f"      fix: {f.fix}")
    failed = [f.check for f in findings if not f.ok]
    if failed:
        fix = "apply the fixes above, then run 'git mlx doctor'"
        ui.error(f"{len(failed)} check(s) failed: {', '.join(failed)}", fix)
        return 1
    return 0


def check_program() -> Finding:
    """git runs the filters as `git-mlx ...` through the shell: it must be on PATH."""
    found = shutil.which("git-mlx")
    if found is None:
        return Finding("program", False, "git-mlx is not on PATH, so git cannot run the filters", _PATH_FIX)
    return Finding("program", True, found)


_PATH_FIX = "add the folder holding git-mlx to PATH (./install.sh prints the line), or re-run ./install.sh"


def check_filters(ctx: RepoContext | None) -> Finding:
    values = _git_config(ctx)
    for skip in (False, True):
        wanted = git_settings(skip)
        if all(values.get(key) == value for key, value in wanted.items()):
            mode = " (checkout leaves pointers: --skip-smudge)" if skip else ""
            return Finding("filters", True, f"configured{mode}")
    wrong = [key for key, value in git_settings().items() if values.get(key) not in (value, git_settings(True)[key])]
    return Finding("filters", False, f"not configured: {', '.join(wrong)}", "run 'git mlx install'")


def _git_config(ctx: RepoContext | None) -> dict[str, str]:
    keys = git_settings()
    if ctx is not None:
        return {key: value for key in keys if (value := ctx.config.git(key)) is not None}
    entries = plumbing.read_config(cwd=Path.home())
    return {e.key: e.value for e in entries if e.key in keys}


def check_hooks(ctx: RepoContext) -> Finding:
    if ctx.paths.work_tree is None:
        return Finding("hooks", True, "bare repository: no hooks needed")
    top = Path(ctx.paths.work_tree)
    where = hooks.hooks_dir(top)
    missing = [name for name in hooks.HOOK_NAMES if not (where / name).exists()]
    foreign = [name for name in hooks.HOOK_NAMES if (where / name).exists() and not hooks.is_ours(where / name)]
    hooks_path = ctx.config.git("core.hookspath")
    default = ctx.paths.common_dir / "hooks"
    if hooks_path and missing and any(hooks.is_ours(default / name) for name in missing):
        return Finding(
            "hooks",
            False,
            f"core.hooksPath={hooks_path} shadows gitmlx's hooks in {default}: git runs none of them",
            f"run 'git mlx install' to add them to {where}, or 'git config --unset core.hooksPath'",
        )
    if missing:
        return Finding("hooks", False, f"missing in {where}: {', '.join(missing)}", "run 'git mlx install'")
    if foreign:
        return Finding(
            "hooks",
            False,
            f"not gitmlx's: {', '.join(foreign)} in {where} (push would not upload artifacts)",
            "run 'git mlx install --force' to keep them and run gitmlx's hooks after them",
        )
    return Finding("hooks", True, f"installed in {where}")


def check_store(ctx: RepoContext) -> Finding:
    try:
        store = ctx.store
        store.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix="doctor-", dir=store.tmp_dir)
        os.close(fd)
        os.unlink(probe)
    except MlxError as exc:
        return Finding("store", False, exc.message, exc.hint or "")
    except OSError as exc:
        where = getattr(exc, "filename", None) or "the local store"
        fix = "make it writable, or set mlx.cache to a folder you can write"
        return Finding("store", False, f"cannot write in '{where}': {exc.strerror}", fix)
    return Finding("store", True, f"writable: {store.root}")


def check_remote(ctx: RepoContext) -> list[Finding]:
    """Reachable, and (S3) credentials found; one request, a HEAD of a key no one writes."""
    try:
        url = ctx.artifact_url()
        remote = ctx.open_remote()
    except MlxError as exc:
        return [Finding("remote", False, exc.message, exc.hint or "")]
    found: list[Finding] = []
    source: Callable[[], str | None] | None = getattr(remote, "credentials_source", None)
    if source is not None:
        try:
            method = source()
        except MlxError as exc:
            return [Finding("credentials", False, exc.message, exc.hint or "")]
        if method is None:
            return [Finding("credentials", False, "no AWS credentials found", _CREDENTIALS_FIX)]
        found.append(Finding("credentials", True, f"found ({method})"))
    if isinstance(remote, LocalRemote):
        return found + [_check_local(remote.root, url.value)]
    try:
        remote.exists("mlx-doctor/probe")
    except MlxError as exc:
        return found + [Finding("remote", False, exc.message, exc.hint or "")]
    return found + [Finding("remote", True, f"reachable: {url.value} [{url.source}]")]


_CREDENTIALS_FIX = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (see 'aws configure')"


def _check_local(root: Path, url: str) -> Finding:
    if root.is_dir():
        return Finding("remote", True, f"reachable: {url}")
    if root.parent.is_dir():
        return Finding("remote", True, f"{url} (created by the first push)")
    return Finding("remote", False, f"'{root}' does not exist", "check the path with 'git mlx remote', or create it")
