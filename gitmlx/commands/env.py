"""`git mlx env [--json]`: resolved configuration and where each value came from, and the
versions of what gitmlx runs with (for bug reports and CI logs).

Versions of Python packages come from their installed metadata (`importlib.metadata`):
importing boto3 just to ask would cost a second and could fail on a broken install.
"""

from __future__ import annotations

import platform
from importlib import metadata

from gitmlx import __version__, ui
from gitmlx.config import SETTINGS, git_settings
from gitmlx.context import RepoContext
from gitmlx.errors import MlxError
from gitmlx.git.plumbing import run_git

#: Distributions gitmlx depends on whose version matters in a report.
DEPENDENCIES = ("boto3", "botocore")
#: Optional packages that turn features on when installed (README, "Install").
EXTRAS = ("numpy", "pyarrow", "safetensors", "fsspec", "pandas")


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_version() -> str | None:
    out = run_git(["version"], check=False).decode("utf-8", "replace").strip()
    return out.removeprefix("git version ") or None


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"gitmlx": __version__, "git": _git_version(), "python": platform.python_version()}
    found.update({name: _installed(name) for name in DEPENDENCIES})
    return found


def run(*, as_json: bool = False) -> int:
    ctx = RepoContext()
    git_remote = ctx.default_git_remote()
    try:
        url = ctx.artifact_url(git_remote)
        artifact: dict[str, object] = {"url": url.value, "source": url.source, "problem": None}
    except MlxError as exc:
        artifact = {"url": None, "source": None, "problem": exc.message}
    settings = [(s.key, found) for s in SETTINGS if (found := ctx.config.get(s.key)) is not None]
    filters = {key: ctx.config.git(key) for key in git_settings()}
    found_versions = versions()
    extras = {name: _installed(name) for name in EXTRAS}
    if as_json:
        ui.json_document(
            "env",
            {
                "repository": str(ctx.top),
                "local_store": str(ctx.store.root),
                "git_remote": git_remote,
                "artifact_remote": artifact,
                "settings": [{"key": key, "value": f.value, "source": f.source} for key, f in settings],
                "git_config": [{"key": key, "value": value} for key, value in filters.items()],
                "versions": found_versions,
                "extras": extras,
            },
        )
        return 0
    ui.info(f"gitmlx {__version__}")
    ui.info(f"repository: {ctx.top}")
    ui.info(f"local store: {ctx.store.root}")
    ui.info(f"git remote: {git_remote or '(none)'}")
    if artifact["url"] is not None:
        ui.info(f"artifact remote: {artifact['url']}\t[{artifact['source']}]")
    else:
        ui.info(f"artifact remote: (none) - {artifact['problem']}")
    for key, found in settings:
        ui.info(f"{key}={found.value}\t[{found.source}]")
    for key, value in filters.items():
        ui.info(f"{key}={value or '(unset)'}")
    ui.info("versions: " + ", ".join(f"{name} {v or '(not installed)'}" for name, v in found_versions.items()))
    ui.info("extras: " + ", ".join(f"{name} {v or '(not installed)'}" for name, v in extras.items()))
    return 0
