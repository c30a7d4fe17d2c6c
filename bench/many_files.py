"""Many small files all the way: `git add`, commit, push, clone, pull, `git status`,
`git mlx ls-files` and `git mlx fsck` of N files × 4 KiB, for N = 2,000 / 20,000 / 100,000.

Per N, in a sealed HOME (bench/sealed.py: only `git mlx install`'s global config), a work
repository tracking `*.bin` with a bare git remote beside it (the artifacts go to the
remote's embedded directory remote, `remote.git/mlx`). Files are pseudo-random (one seed
per N), 1,000 to a folder. Timed, in this order:

* `add`: `git add -A` of the N files; `commit`: `git commit` (the post-commit hook);
* `push`: `git push` (the pre-push hook uploads the N objects);
* `clone`: `git clone` of the bare remote (the filter restores the N files);
* `pull`: in the clone, `git pull` after the work repository committed and pushed (both
  untimed) a second commit changing 1% of the files;
* `status`: `git status` in the clone; `mlx status`: `git mlx status` there;
* `ls-files`: `git mlx ls-files` there; `fsck`: `git mlx fsck` there.

Each timed command runs under bench/procmon.py's tree poller, which samples the VmHWM of
every process in the command's tree every `--poll-ms`: the table's "git-mlx MiB" is the
largest high-water mark of one `git-mlx` process (filter process, hook or command) during
the step, named by its subcommand; `git` processes are not counted. Printed: a Markdown
table per step and N (seconds, microseconds per file, peak RSS) and a table of time per
file against N.

    python bench/many_files.py [--files 2000,20000,100000] [--poll-ms 20] [--keep]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from procmon import Measured, measure  # noqa: E402
from sealed import gitmlx_env  # noqa: E402

SIZE = 4096
PER_FOLDER = 1000
STEPS = ("add", "commit", "push", "clone", "pull", "status", "mlx status", "ls-files", "fsck")


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def path_of(i: int) -> str:
    return f"d{i // PER_FOLDER:03}/f{i:06}.bin"


def write_files(work: Path, count: int, rng: random.Random) -> None:
    for i in range(count):
        path = work / path_of(i)
        if i % PER_FOLDER == 0:
            path.parent.mkdir(exist_ok=True)
        path.write_bytes(rng.randbytes(SIZE))


class Steps:
    """Runs the timed commands of one N and keeps what procmon measured."""

    def __init__(self, root: Path, env: dict[str, str], poll: float) -> None:
        self.env = {**env, "GIT_MLX_NO_PROGRESS": "1"}
        self.log = root / "commands.log"
        self.poll = poll
        self.results: dict[str, Measured] = {}

    def timed(self, step: str, args: list[str], cwd: Path) -> None:
        os.sync()  # earlier writes are not billed to this step
        m = measure(args, cwd, self.env, self.log, self.poll)
        if m.returncode:
            raise SystemExit(f"{step}: {' '.join(args)} exited {m.returncode}; see {self.log}")
        self.results[step] = m


def one_size(count: int, poll: float, keep: bool) -> dict[str, Measured]:
    root = Path(tempfile.mkdtemp(prefix=f"gitmlx-many-{count}-"))
    try:
        env = gitmlx_env(root, Path(sys.executable).parent)
        remote, work, dest = root / "remote.git", root / "work", root / "clone"
        run(["git", "init", "-q", "--bare", str(remote)], root, env)
        run(["git", "init", "-q", str(work)], root, env)
        run(["git", "remote", "add", "origin", str(remote)], work, env)
        run(["git", "mlx", "install"], work, env)
        run(["git", "mlx", "track", "*.bin"], work, env)
        run(["git", "add", ".gitattributes"], work, env)
        run(["git", "commit", "-q", "-m", "track"], work, env)
        rng = random.Random(count)
        began = time.perf_counter()
        write_files(work, count, rng)
        print(f"N={count}: files written in {time.perf_counter() - began:.1f} s", file=sys.stderr)

        steps = Steps(root, env, poll)
        steps.timed("add", ["git", "add", "-A"], work)
        steps.timed("commit", ["git", "commit", "-q", "-m", "many"], work)
        steps.timed("push", ["git", "push", "-q", "origin", "main"], work)
        steps.timed("clone", ["git", "clone", "-q", str(remote), str(dest)], root)
        for i in range(0, count, 100):  # 1% of the files change
            (work / path_of(i)).write_bytes(rng.randbytes(SIZE))
        run(["git", "commit", "-q", "-am", "one percent"], work, env)
        run(["git", "push", "-q", "origin", "main"], work, env)
        steps.timed("pull", ["git", "pull", "-q", "--ff-only"], dest)
        steps.timed("status", ["git", "status", "--porcelain"], dest)
        steps.timed("mlx status", ["git", "mlx", "status"], dest)
        steps.timed("ls-files", ["git", "mlx", "ls-files"], dest)
        steps.timed("fsck", ["git", "mlx", "fsck"], dest)
        dirty = run(["git", "status", "--porcelain"], dest, env)
        if dirty:
            raise SystemExit(f"N={count}: the clone is not clean:\n{dirty[:2000]}")
        return steps.results
    finally:
        if keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def mlx_peak(m: Measured) -> tuple[int, str]:
    """The largest git-mlx process of a step: (KiB, `git-mlx subcommand`)."""
    best = (0, "-")
    for command, kib in m.commands.items():
        if command.startswith("git-mlx") and kib > best[0]:
            best = (kib, command.removeprefix("git-mlx ").strip() or "git-mlx")
    return best


def print_tables(results: dict[int, dict[str, Measured]]) -> None:
    sizes = sorted(results)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print()
    header = " | ".join(f"N={n:,}: s, µs/file, git-mlx MiB (process)" for n in sizes)
    print(f"| step | {header} |")
    print("| --- |" + " ---: |" * len(sizes))
    for step in STEPS:
        cells = []
        for n in sizes:
            m = results[n][step]
            kib, who = mlx_peak(m)
            cells.append(f"{m.seconds:.2f}, {m.seconds / n * 1e6:.0f}, {kib / 1024:.0f} ({who})")
        print(f"| {step} | " + " | ".join(cells) + " |")
    print()
    print("µs per file against N: equal bars are linear cost (each step's bars scaled to its longest)")
    for step in STEPS:
        per_file = {n: results[n][step].seconds / n * 1e6 for n in sizes}
        longest = max(per_file.values()) or 1.0
        for n, micros in per_file.items():
            bar = "#" * max(1, round(40 * micros / longest))
            print(f"{step:>10} {n:>7,} {micros:7.0f} µs {bar}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--files",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[2000, 20000, 100000],
        help="file counts, comma-separated (default 2000,20000,100000)",
    )
    parser.add_argument("--poll-ms", type=float, default=20.0, help="how often peak RSS is sampled")
    parser.add_argument("--keep", action="store_true", help="keep the repositories (their paths are printed)")
    opts = parser.parse_args()
    results: dict[int, dict[str, Measured]] = {}
    for count in opts.files:
        results[count] = one_size(count, opts.poll_ms / 1000, opts.keep)
        print_tables(results)  # as each N finishes: a 100,000-file run is long
        sys.stdout.flush()


if __name__ == "__main__":
    main()
