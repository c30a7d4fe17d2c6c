"""Bare mirrors of repositories named by URL, for the Python API.

Owns: where a mirror lives (`$GIT_MLX_CACHE/repos/<hash>`, else
`${XDG_CACHE_HOME:-~/.cache}/gitmlx/repos/<hash>`), making one (blob-less where the
server supports partial clone, so only the small pointer blobs that are read get
fetched), and refreshing it when a revision may have moved.
Must not: read artifacts, touch the user's checkouts, or print.

A mirror is `git clone --mirror`: every ref of the source under its own name, so `main`,
`v1` and `HEAD` mean what they mean there. Creation goes to a temporary directory renamed
into place, so processes racing to make the same mirror both end up using one.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from gitmlx.errors import MlxError
from gitmlx.git import plumbing

#: A branch or tag is fetched again when the mirror was last refreshed by this process
#: longer ago than this; a full commit id already present is never refetched.
REFRESH_SECONDS = 30.0
_refreshed: dict[Path, float] = {}
_FULL_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
#: Variables that point git at one particular repository; a mirror is another one.
_REPO_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
)


def is_url(repo: str) -> bool:
    """True for `scheme://...` and scp-like `host:path` (what git clone accepts as remote)."""
    if "://" in repo:
        return True
    head = repo.split("/", 1)[0]
    return ":" in head and not os.path.exists(repo) and not re.fullmatch(r"[A-Za-z]:", head[:2])


def cache_root(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ if env is None else env)
    if env.get("GIT_MLX_CACHE"):
        return Path(env["GIT_MLX_CACHE"]).expanduser() / "repos"
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base).expanduser() / "gitmlx" / "repos"


def mirror_path(url: str, env: dict[str, str] | None = None) -> Path:
    return cache_root(env) / hashlib.sha256(url.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _git_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _REPO_VARS}


def _resolves(path: Path, rev: str) -> bool:
    out = plumbing.run_git(["rev-parse", "--verify", "-q", f"{rev}^{{tree}}"], cwd=path, check=False)
    return bool(out.strip())


def ensure(url: str, rev: str) -> Path:
    """A mirror of `url` in which `rev` resolves (fetching if it may have moved)."""
    path = mirror_path(url)
    if not (path / "HEAD").is_file():
        _create(url, path)
        _refreshed[path] = time.monotonic()
    elif not (_FULL_ID.fullmatch(rev) and _resolves(path, rev)):
        recent = time.monotonic() - _refreshed.get(path, float("-inf")) < REFRESH_SECONDS
        if not (recent and _resolves(path, rev)):
            try:
                plumbing.run_git(["fetch", "-q", "--prune", "origin"], cwd=path, env=_git_env())
                _refreshed[path] = time.monotonic()
            except MlxError:
                if not _resolves(path, rev):
                    raise
                # Offline, or another process holds a ref lock: the revision is known already.
    if not _resolves(path, rev):
        raise MlxError(
            f"revision '{rev}' not found in '{display_url(url)}'",
            "check the branch, tag or commit name",
        )
    return path


def _create(url: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{path.name}-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        try:
            _clone(url, tmp, ["--filter=blob:none"])
        except MlxError:
            shutil.rmtree(tmp, ignore_errors=True)
            _clone(url, tmp, [])  # a server without partial clone: a full bare mirror
        try:
            os.rename(tmp, path)
        except OSError:
            if not (path / "HEAD").is_file():
                raise
            # Another process made the same mirror first: use that one.
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _clone(url: str, dest: Path, extra: list[str]) -> None:
    try:
        plumbing.run_git(["clone", "-q", "--mirror", *extra, url, str(dest)], cwd=dest.parent, env=_git_env())
    except MlxError as exc:
        raise MlxError(
            f"cannot clone '{display_url(url)}': {display_url(exc.message.removeprefix('git clone failed: '))}",
            "check the URL and your access to it",
        ) from None


def display_url(url: str) -> str:
    """The URL without any user:password part."""
    return re.sub(r"//[^/@]*@", "//", url)
