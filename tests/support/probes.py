"""Probes of what the `git-mlx` processes did, seen from outside them.

Owns: a `git-mlx` shim that records each invocation's peak RSS, a scan of files for a
secret (read in blocks, so a scan of gigabytes stays small), and the modules the commands
git runs must not import at start-up.
Must not: import gitmlx, or change what the real `git-mlx` does (the shim only measures).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from tests.support.content import MIB

# --- peak memory of every git-mlx process ----------------------------------------------

_SHIM = """\
#!{python}
# Runs the real git-mlx as a child and records its peak RSS (KiB) in a report file.
import json, os, resource, subprocess, sys
status = subprocess.call([{real!r}, *sys.argv[1:]])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if sys.platform == "darwin":
    peak //= 1024
with open(os.path.join({reports!r}, "%d.json" % os.getpid()), "w") as f:
    json.dump({{"argv": sys.argv[1:], "peak_kib": peak, "status": status}}, f)
sys.exit(status)
"""


def install_rss_shim(shim_dir: Path, real_git_mlx: Path, reports: Path) -> Path:
    """A `git-mlx` in `shim_dir` (put it first on PATH) that measures the real one.

    git starts `git-mlx` for the filter (`filter.mlx.process = git-mlx filter-process`) and,
    through `git mlx pre-push`, for the hook; both resolve through PATH to the shim."""
    shim_dir.mkdir(parents=True, exist_ok=True)
    reports.mkdir(parents=True, exist_ok=True)
    shim = shim_dir / "git-mlx"
    shim.write_text(_SHIM.format(python=sys.executable, real=str(real_git_mlx), reports=str(reports)))
    shim.chmod(0o755)
    return shim


def rss_reports(reports: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(reports.glob("*.json"))]


# --- secrets ---------------------------------------------------------------------------


def files_containing(secret: bytes, roots: Iterable[Path]) -> list[Path]:
    """Every regular file under `roots` whose bytes contain `secret` (read in blocks)."""
    hits = []
    overlap = len(secret) - 1
    for root in roots:
        if not root.exists():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                if _file_contains(path, secret, overlap):
                    hits.append(path)
    return hits


def _file_contains(path: Path, secret: bytes, overlap: int) -> bool:
    tail = b""
    try:
        with open(path, "rb") as f:
            while block := f.read(4 * MIB):
                if secret in tail + block:
                    return True
                tail = block[-overlap:] if overlap else b""
    except OSError:
        return False
    return False


#: Modules no command git runs (filter, hooks, textconv) may import while it works:
#: typing, dataclasses (with inspect) and secrets were most of the filter's import time,
#: and the rest load only when a request needs them (docs/design.md, "Start-up").
STARTUP_HEAVY = (
    "typing",
    "dataclasses",
    "inspect",
    "secrets",
    "click",
    "tqdm",
    "sqlite3",
    "boto3",
    "botocore",
    "concurrent.futures",
    "logging",
    "json",
    "tempfile",
    "gitmlx.remotes.base",
)


#: What the filter process loads only once a request needs it, on top of STARTUP_HEAVY:
#: `hashlib` (OpenSSL's load) for a stream or past the small inputs `osutil.digests`
#: hashes with Python's built-in sha1 and sha256; `subprocess` (with `signal`, `selectors`
#: and `locale`) for a git command other than the config read, which is spawned without
#: it; `threading` and `queue` for an object past one block (the store's locks come from
#: `_thread`); the wildmatch automaton for the first fetch pattern; the hooks module when
#: git closes the filter; and what only a checkout or a display uses.
FILTER_LAZY = (
    "hashlib",
    "_hashlib",
    "subprocess",
    "threading",
    "queue",
    "gitmlx.format.wildmatch",
    "gitmlx.format.layout",
    "gitmlx.git.hooks",
    "gitmlx.checkout.handoff",
    "gitmlx.checkout.progress",
    "gitmlx.checkout.gitparent",
)


def imported_modules(stderr: str) -> set[str]:
    """The modules named in `python -X importtime` lines (PYTHONPROFILEIMPORTTIME=1)."""
    found = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            found.add(line.rsplit("|", 1)[1].strip())
    return found
