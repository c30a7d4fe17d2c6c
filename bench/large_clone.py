"""Files larger than memory: clone a repo holding one big artifact with
mlx.smudgelimit below its size, and report the peak RSS of every process in the tree.

    python bench/large_clone.py [--gib 4] [--limit 1GiB]

Without the limit, git holds the whole smudged file in memory (RSS ≈ the file's size,
for Git LFS too); above it, the filter checks out the pointer and the post-checkout
hook streams the content into place. Target (issue: files larger than memory): every
process under 256 MiB, and `git status` clean afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from procmon import measure  # noqa: E402
from sealed import gitmlx_env  # noqa: E402

MiB = 1024 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=4.0, help="artifact size in GiB (default 4)")
    parser.add_argument("--limit", default="1GiB", help="mlx.smudgelimit for the clone (default 1GiB)")
    args = parser.parse_args()
    size = int(args.gib * 1024) * MiB
    root = Path(tempfile.mkdtemp(prefix="gitmlx-bench-large-"))
    try:
        env = gitmlx_env(root, Path(sys.executable).parent)

        def git(*a: str, cwd: Path) -> None:
            subprocess.run(["git", *a], cwd=cwd, env=env, check=True, capture_output=True)

        git("init", "-q", "--bare", str(root / "remote.git"), cwd=root)
        work = root / "work"
        git("init", "-q", str(work), cwd=root)
        git("remote", "add", "origin", str(root / "remote.git"), cwd=work)
        git("mlx", "track", "*.bin", cwd=work)
        digest = hashlib.sha256()
        with open(work / "big.bin", "wb") as f:  # streamed, never held in memory
            left = size
            while left:
                block = os.urandom(min(left, 16 * MiB))
                digest.update(block)
                f.write(block)
                left -= len(block)
        git("add", ".", cwd=work)
        git("commit", "-q", "-m", "big", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        (work / "big.bin").unlink()
        shutil.rmtree(work / ".git" / "mlx", ignore_errors=True)

        clone = root / "clone"
        log = root / "clone.log"
        m = measure(
            ["git", "-c", f"mlx.smudgelimit={args.limit}", "clone", "-q", str(root / "remote.git"), str(clone)],
            root,
            env,
            log,
            0.02,
        )
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=clone, env=env, capture_output=True, text=True
        ).stdout
        ok_bytes = _sha(clone / "big.bin")
        print(
            f"clone of one {args.gib:g} GiB artifact with mlx.smudgelimit={args.limit}: {m.seconds:.1f} s,"
            f" exit {m.returncode}"
        )
        for name, kib in sorted(m.commands.items(), key=lambda kv: -kv[1]):
            print(f"  peak RSS {kib / 1024:8.1f} MiB  {name}")
        worst = max(m.rss_kib.values()) / 1024
        print(
            f"largest process: {worst:.1f} MiB (target < 256 MiB); git status clean: {status == ''};"
            f" content identical: {ok_bytes == digest.hexdigest()}"
        )
        return 0 if m.returncode == 0 and worst < 256 and status == "" and ok_bytes == digest.hexdigest() else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(16 * MiB):
            digest.update(block)
    return digest.hexdigest()


if __name__ == "__main__":
    raise SystemExit(main())
