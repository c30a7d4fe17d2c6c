"""Long histories: what a push of one new commit, `git mlx status`, `prune --dry-run` and
`gc --remote` (a dry run) cost in repositories of N commits × 50 artifacts.

Each repository is built fast but through gitmlx's own clean filter
(tests/support/history.py): every version of every artifact (4-16 KiB, pseudo-random) is
cleaned by one `git hash-object -w --stdin-paths` and `git fast-import` writes the
commits, an hour apart and ending a day ago: the first tracks `*.bin`, the second adds
the 50 artifacts, each later one changes 4 of them; `git gc` packs the result. The whole
history is pushed (`git push`, untimed: the pre-push hook uploads every object to the
directory remote beside the bare git remote). Then, per rep, timed:

* `push`: `git push` of one new commit changing one artifact (the commit is untimed);
* `status`, `prune --dry-run`, `gc --remote` (a dry run).

Printed per N: the median wall time of each step, its ratio to the smallest N, the git
processes each step started (counted in GIT_TRACE: every `git` builtin run, the
top-level one included), and the requests it made of the artifact remote (GIT_MLX_TRACE's
`remote:` lines, counted in one more untimed run of each step after a new commit:
tracing costs time; a directory remote does not trace its listings).

    python bench/history.py [--commits 10,100,1000] [--reps 3] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from push_record import sandbox, tracking_repo  # noqa: E402

from tests.support.history import HistoryShape, build_history  # noqa: E402

ARTIFACTS = 50
CHANGED_PER_COMMIT = 4
STEPS = {
    "push": ["git", "push", "-q", "origin", "main"],
    "status": ["git", "mlx", "status"],
    "prune --dry-run": ["git", "mlx", "prune", "--dry-run"],
    "gc --remote": ["git", "mlx", "gc", "--remote"],
}


def run(args: list[str], cwd: Path, env: dict[str, str], stdin: bytes | None = None) -> bytes:
    done = subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr.decode(errors='replace')}")
    return done.stdout


def build(root: Path, commits: int, env: dict[str, str]) -> Path:
    """A work repository whose `main` has `commits` commits (the first tracks `*.bin`),
    pushed to `remote.git`."""
    work = tracking_repo(root, env)
    run(["git", "add", ".gitattributes"], work, env)
    run(["git", "commit", "-q", "-m", "track"], work, env)
    start = int(time.time()) - commits * 3600 - 86400
    shape = HistoryShape(commits - 1, ARTIFACTS, CHANGED_PER_COMMIT, (4096, 16384), start, 3600, commits)
    build_history(work, shape, env)
    # Pack the loose pointer blobs (else the fetch in gc's first rep runs `gc --auto`)
    # and refresh the index's stat data (else the first status re-cleans racy files).
    run(["git", "gc", "-q"], work, env)
    run(["git", "status", "--porcelain"], work, env)
    run(["git", "push", "-q", "origin", "main"], work, env)
    return work


@dataclass
class Step:
    seconds: list[float] = field(default_factory=list)
    git_processes: list[int] = field(default_factory=list)
    remote_requests: int = 0


def timed(args: list[str], work: Path, env: dict[str, str], trace: Path, step: Step) -> None:
    """Wall time, and the git processes started (the traced builtins)."""
    trace.unlink(missing_ok=True)
    start = time.perf_counter()
    run(args, work, {**env, "GIT_TRACE": str(trace)})
    step.seconds.append(time.perf_counter() - start)
    step.git_processes.append(len(re.findall(r"trace: built-in: git ", trace.read_text(errors="replace"))))


def requests(args: list[str], work: Path, env: dict[str, str], trace: Path) -> int:
    """Requests to the artifact remote (GIT_MLX_TRACE's `remote:` lines; a directory
    remote traces no listing), in a run of its own: tracing costs time."""
    trace.unlink(missing_ok=True)
    run(args, work, {**env, "GIT_MLX_TRACE": str(trace)})
    return len(re.findall(r"gitmlx\[\d+\] remote: ", trace.read_text(errors="replace"))) if trace.exists() else 0


def measure(commits: int, reps: int, keep: bool) -> dict[str, Step]:
    root = Path(tempfile.mkdtemp(prefix=f"gitmlx-history-{commits}-"))
    try:
        env = sandbox(root)
        began = time.perf_counter()
        work = build(root, commits, env)
        print(f"N={commits}: built and pushed in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        rng = random.Random(-commits)
        steps = {name: Step() for name in STEPS}
        for rep in range(reps + 1):
            (work / f"h{rep % ARTIFACTS:03}.bin").write_bytes(rng.randbytes(8192))
            run(["git", "commit", "-q", "-am", f"new {rep}"], work, env)
            for name, args in STEPS.items():
                if rep < reps:
                    timed(args, work, env, root / "trace.log", steps[name])
                else:  # one more, untimed, to count the remote requests
                    steps[name].remote_requests = requests(args, work, env, root / "mlx-trace.log")
        return steps
    finally:
        if keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", default="10,100,1000", help="history lengths, comma-separated")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the repositories (their paths are printed)")
    opts = parser.parse_args()
    sizes = [int(n) for n in opts.commits.split(",")]
    results = {n: measure(n, opts.reps, opts.keep) for n in sizes}
    base = results[sizes[0]]
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}; medians of {opts.reps} reps")
    print("| step | " + " | ".join(f"N={n}: s (×N={sizes[0]}), git procs, remote reqs" for n in sizes) + " |")
    print("| --- |" + " ---: |" * len(sizes))
    for name in STEPS:
        cells = []
        for n in sizes:
            step = results[n][name]
            seconds = statistics.median(step.seconds)
            ratio = seconds / statistics.median(base[name].seconds)
            procs = int(statistics.median(step.git_processes))
            cells.append(f"{seconds:.2f} ({ratio:.2f}×), {procs}, {step.remote_requests}")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
