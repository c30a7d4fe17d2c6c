"""`git mlx demo`: the main job end to end in a scratch folder, on the embedded default
remote: track, commit, push, clone, restore, verify; printing each step."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import struct
import tempfile
import time
from pathlib import Path

from gitmlx import ui
from gitmlx.errors import MlxError
from gitmlx.format.sizes import human_size
from gitmlx.git.plumbing import env_for_other_repo, run_git

DEMO_TENSOR_BYTES = 24 * 1024 * 1024


def write_safetensors(path: Path, nbytes: int, seed: int) -> None:
    """A real (if random) safetensors file: u64 header length, JSON header, f32 data."""
    count = nbytes // 4
    header = json.dumps({"weight": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        left = count * 4
        while left:
            piece = rng.randbytes(min(left, 1024 * 1024))  # incompressible, like real weights
            f.write(piece)
            left -= len(piece)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def run(*, keep: bool = False) -> int:
    # Over 80 lines on purpose: the demo is a script a reader follows step by step.
    if shutil.which("git-mlx") is None:
        raise MlxError(
            "'git-mlx' is not on PATH, so git cannot run gitmlx's filters",
            "run ./install.sh, or add its bin folder to PATH",
        )
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="gitmlx-demo-"))
    env = env_for_other_repo()
    env.update(
        {
            "GIT_AUTHOR_NAME": "gitmlx demo",
            "GIT_AUTHOR_EMAIL": "demo@example.invalid",
            "GIT_COMMITTER_NAME": "gitmlx demo",
            "GIT_COMMITTER_EMAIL": "demo@example.invalid",
        }
    )
    # The filter config travels with the demo's git commands, so it works before `install` too.
    settings = {
        "filter.mlx.process": "git-mlx filter-process",
        "filter.mlx.required": "true",
        "filter.mlx.clean": "git-mlx clean -- %f",
        "filter.mlx.smudge": "git-mlx smudge -- %f",
        "init.defaultBranch": "main",
    }
    env["GIT_CONFIG_COUNT"] = str(len(settings))
    for i, (key, value) in enumerate(settings.items()):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value

    def git(*args: str, cwd: Path) -> str:
        return run_git(list(args), cwd=cwd, env=env).decode()

    def step(n: int, text: str) -> None:
        ui.info(f"[{n}/6] {text}")

    try:
        ui.info(f"gitmlx demo in {scratch}")
        remote, work, clone = scratch / "remote.git", scratch / "work", scratch / "clone"
        git("init", "-q", "--bare", str(remote), cwd=scratch)
        git("init", "-q", str(work), cwd=scratch)
        git("remote", "add", "origin", str(remote), cwd=work)
        git("mlx", "track", "*.safetensors", cwd=work)
        step(1, "track: git mlx track '*.safetensors' -> " + (work / ".gitattributes").read_text().strip())

        model = work / "model.safetensors"
        write_safetensors(model, DEMO_TENSOR_BYTES, seed=1)
        (work / "README.md").write_text("A model versioned with gitmlx.\n")
        git("add", ".gitattributes", "README.md", "model.safetensors", cwd=work)
        git("commit", "-q", "-m", "Add model", cwd=work)
        blob = git("cat-file", "-p", "HEAD:model.safetensors", cwd=work)
        step(
            2,
            f"commit: model.safetensors ({human_size(model.stat().st_size)}) is a "
            f"{len(blob.encode())}-byte pointer in git:",
        )
        for line in blob.splitlines():
            ui.info(f"        {line}")

        git("push", "-q", "origin", "HEAD:main", cwd=work)
        stored = sum(f.stat().st_size for f in (remote / "mlx").rglob("*") if f.is_file())
        step(
            3,
            f"push: the pre-push hook stored {human_size(stored)} (chunk packs + manifest) in "
            f"{remote / 'mlx'}, then git sent the pointer",
        )

        git("clone", "-q", str(remote), str(clone), cwd=scratch)
        restored = clone / "model.safetensors"
        step(
            4,
            f"clone: checkout restored model.safetensors ({human_size(restored.stat().st_size)}) "
            "from the artifact remote",
        )

        original, copy = sha256_of(model), sha256_of(restored)
        if original != copy:
            raise MlxError(f"demo failed: clone's sha256 {copy} differs from {original}")
        step(5, f"verify: sha256 {copy[:16]}... identical in the clone")

        status = git("status", "--porcelain", cwd=clone)
        if status.strip():
            raise MlxError(f"demo failed: the clone is not clean:\n{status}")
        step(6, "status: 'git status' in the clone is clean")
        ui.info(f"done in {time.monotonic() - started:.1f} s")
        return 0
    finally:
        if keep:
            ui.info(f"scratch folder kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
