"""The pre-push hook with and without the remote record: `git push` of one changed file
in a repository of 2,000 tracked artifacts (4 KiB each), pushed to a bare git remote with
its artifacts beside it (a directory remote).

Every push checks the whole tree of the pushed tip. With the record warm (what the last
push confirmed), only objects it does not vouch for are asked about; with a cold record
(`remote-objects.sqlite` deleted before the push), every object of the tree is. Printed
per rep: the objects asked of the remote (from the push's own summary line) and the
wall time of `git push`.

    python bench/push_record.py [--files 2000] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sealed import gitmlx_env  # noqa: E402

ASKED = re.compile(r"(\d+) asked of the remote")


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True)


def sandbox(root: Path) -> dict[str, str]:
    return gitmlx_env(root, Path(sys.executable).parent)


def tracking_repo(root: Path, env: dict[str, str]) -> Path:
    """`root/work`, tracking `*.bin` (not committed yet), origin a bare `root/remote.git`."""
    work = root / "work"
    run(["git", "init", "-q", "--bare", str(root / "remote.git")], root, env)
    run(["git", "init", "-q", str(work)], root, env)
    run(["git", "remote", "add", "origin", str(root / "remote.git")], work, env)
    run(["git", "mlx", "install"], work, env)
    run(["git", "mlx", "track", "*.bin"], work, env)
    return work


def timed_push(work: Path, env: dict[str, str]) -> tuple[int, float]:
    start = time.perf_counter()
    out = run(["git", "push", "origin", "main"], work, env)
    elapsed = time.perf_counter() - start
    found = ASKED.search(out.stderr)
    if found is None:
        raise SystemExit(f"no summary line in the push's output:\n{out.stderr}")
    return int(found.group(1)), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=5)
    opts = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="gitmlx-push-record-"))
    try:
        env = sandbox(root)
        work = tracking_repo(root, env)
        for i in range(opts.files):
            (work / f"f{i:05}.bin").write_bytes(os.urandom(4096))
        run(["git", "add", "-A"], work, env)
        run(["git", "commit", "-q", "-m", "all"], work, env)
        run(["git", "push", "-q", "origin", "main"], work, env)
        results: dict[str, list[tuple[int, float]]] = {"warm": [], "cold": []}
        for rep in range(opts.reps):
            for kind in ("warm", "cold"):
                (work / f"f{rep:05}.bin").write_bytes(os.urandom(4096))
                run(["git", "commit", "-q", "-am", f"{kind} {rep}"], work, env)
                if kind == "cold":
                    (work / ".git" / "mlx" / "remote-objects.sqlite").unlink()
                results[kind].append(timed_push(work, env))
        for kind, rows in results.items():
            asked = sorted({a for a, _ in rows})
            times = [t for _, t in rows]
            print(
                f"{kind} record: asked {asked} object(s) of the remote; "
                f"git push median {statistics.median(times):.2f} s "
                f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} reps)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
