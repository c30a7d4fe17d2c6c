"""Start-up: what one small file costs, where the filter process's start is most of it.

Every git command that runs a filter pays for starting it: Git LFS starts a Go binary,
gitmlx a Python interpreter. This benchmark times, interleaved rep by rep in one run,
for each gitmlx build given (`--mlx LABEL=PATH/TO/git-mlx`, repeatable, e.g. an old and a
new checkout's virtualenv) and for Git LFS:

* `git add` of one new 4 KiB tracked file;
* `git commit -a` after editing one 4 KiB tracked file (the commit starts the filter);
* the filter alone: from spawning `git-mlx filter-process` to its answer to the first
  clean request (handshake included), driven over pipes the way git drives it;
* for gitmlx builds, the cumulative `python -X importtime` of
  `gitmlx.commands.filter_process` (bytecode cached, best of 9);
* with `--floor`, bench/floor_filter.py: a bare Python filter under the first build's
  interpreter that hashes and answers but imports nothing of gitmlx, so the figures show
  which part of a Python filter's start-up no gitmlx change can remove.

    python bench/startup.py --mlx new=.venv/bin/git-mlx --mlx old=/path/old/.venv/bin/git-mlx

Each tool runs in its own HOME with only its own filter configured (`git <tool> install`).
Medians are printed with each one's ratio to Git LFS.
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
from pathlib import Path

SIZE = 4096


def pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


FLUSH = b"0000"


def read_pkt(stream) -> bytes | None:
    head = stream.read(4)
    if len(head) < 4:
        raise RuntimeError("filter closed the pipe")
    n = int(head, 16)
    return None if n == 0 else stream.read(n - 4)


def read_until_flush(stream) -> list[bytes]:
    out = []
    while (line := read_pkt(stream)) is not None:
        out.append(line)
    return out


class Tool:
    def __init__(self, label: str, sub: str, exe: Path, root: Path) -> None:
        self.label, self.sub, self.exe = label, sub, exe
        self.home = root / f"home-{label}"
        self.repo = root / f"repo-{label}"
        self.home.mkdir(parents=True)
        self.env = {
            "HOME": str(self.home),
            "PATH": f"{exe.parent}:/usr/local/bin:/usr/bin:/bin",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "b",
            "GIT_AUTHOR_EMAIL": "b@example.invalid",
            "GIT_COMMITTER_NAME": "b",
            "GIT_COMMITTER_EMAIL": "b@example.invalid",
            "GIT_MLX_NO_PROGRESS": "1",
            "LC_ALL": "C.UTF-8",
            "TMPDIR": str(self.home),
        }
        self.git("config", "--global", "init.defaultBranch", "main", cwd=self.home)
        self.git("init", "-q", str(self.repo), cwd=self.home)
        self.install()
        (self.repo / "edit.bin").write_bytes(os.urandom(SIZE))
        self.git("add", ".gitattributes", "edit.bin", cwd=self.repo)
        self.git("commit", "-q", "-m", "start", cwd=self.repo)
        self.n = 0

    def install(self) -> None:
        self.git(self.sub, "install", cwd=self.home)
        self.git(self.sub, "track", "*.bin", cwd=self.repo)

    def command(self) -> list[str]:
        return [str(self.exe), "filter-process"]

    def git(self, *args: str, cwd: Path) -> None:
        subprocess.run(["git", *args], cwd=cwd, env=self.env, check=True, capture_output=True)

    def timed(self, *args: str) -> float:
        start = time.perf_counter()
        subprocess.run(["git", *args], cwd=self.repo, env=self.env, check=True, capture_output=True)
        return time.perf_counter() - start

    def add_one(self) -> float:
        self.n += 1
        name = f"new-{self.n}.bin"
        (self.repo / name).write_bytes(os.urandom(SIZE))
        return self.timed("add", name)

    def commit_edit(self) -> float:
        (self.repo / "edit.bin").write_bytes(os.urandom(SIZE))
        return self.timed("commit", "-q", "-a", "-m", "edit")

    def first_answer(self) -> float:
        """Spawn the filter process and time it to its answer to one clean request."""
        content = os.urandom(SIZE)
        request = (
            pkt(b"git-filter-client\n")
            + pkt(b"version=2\n")
            + FLUSH
            + pkt(b"capability=clean\n")
            + pkt(b"capability=smudge\n")
            + FLUSH
            + pkt(b"command=clean\n")
            + pkt(b"pathname=probe.bin\n")
            + FLUSH
            + pkt(content)
            + FLUSH
        )
        start = time.perf_counter()
        proc = subprocess.Popen(
            self.command(),
            cwd=self.repo,
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin and proc.stdout
        proc.stdin.write(request)
        proc.stdin.flush()
        read_until_flush(proc.stdout)  # welcome + version
        read_until_flush(proc.stdout)  # capabilities
        status = read_until_flush(proc.stdout)  # status=success
        body = read_until_flush(proc.stdout)  # the pointer
        elapsed = time.perf_counter() - start
        read_until_flush(proc.stdout)  # trailing status (empty list keeps it)
        proc.stdin.close()
        proc.wait(timeout=30)
        if status != [b"status=success\n"] or not body:
            raise RuntimeError(f"{self.label}: clean answered {status!r}")
        return elapsed


class FloorTool(Tool):
    """bench/floor_filter.py under the same Python as the first gitmlx: what any Python
    filter pays before gitmlx's own code runs."""

    def __init__(self, python: Path, root: Path) -> None:
        super().__init__("floor", "floor", python, root)

    def command(self) -> list[str]:
        return [str(self.exe), str(Path(__file__).resolve().with_name("floor_filter.py"))]

    def install(self) -> None:
        line = " ".join(self.command())
        self.git("config", "--global", "filter.floor.process", line, cwd=self.home)
        self.git("config", "--global", "filter.floor.required", "true", cwd=self.home)
        (self.repo / ".gitattributes").write_text("*.bin filter=floor -text\n")


def shebang_python(exe: Path) -> Path | None:
    first = exe.read_text(errors="replace").splitlines()[0]
    python = first[2:].strip() if first.startswith("#!") else ""
    return Path(python) if python and Path(python).exists() else None


def import_ms(exe: Path) -> float | None:
    """The filter module's cumulative import time from `-X importtime` (best of 9), with
    bytecode caching on, as an installed gitmlx runs."""
    python = shebang_python(exe)
    if python is None:
        return None
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    best = None
    for _ in range(9):
        out = subprocess.run(
            [str(python), "-X", "importtime", "-c", "import gitmlx.commands.filter_process"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
            cwd=tempfile.gettempdir(),  # not a checkout: `-c` puts the folder first on sys.path
        ).stderr
        m = re.search(r"import time:\s+\d+ \|\s+(\d+) \| gitmlx\.commands\.filter_process$", out, re.M)
        if m:
            best = int(m.group(1)) if best is None else min(best, int(m.group(1)))
    return best / 1000 if best is not None else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mlx", action="append", required=True, metavar="LABEL=PATH", help="a git-mlx executable")
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--floor", action="store_true", help="also time bench/floor_filter.py (a bare Python filter)")
    args = p.parse_args()
    lfs = shutil.which("git-lfs")
    if lfs is None:
        sys.exit("git-lfs is not on PATH")
    root = Path(tempfile.mkdtemp(prefix="gitmlx-startup-"))
    try:
        tools = []
        for spec in args.mlx:
            label, _, path = spec.partition("=")
            tools.append(Tool(label, "mlx", Path(path).resolve(), root))
        python = shebang_python(tools[0].exe)
        if args.floor and python is not None:
            tools.append(FloorTool(python, root))
        tools.append(Tool("Git LFS", "lfs", Path(lfs), root))
        results: dict[str, dict[str, list[float]]] = {t.label: {"add": [], "commit": [], "first": []} for t in tools}
        for _ in range(args.reps):
            order = tools[:]
            random.shuffle(order)
            for tool in order:
                results[tool.label]["add"].append(tool.add_one())
                results[tool.label]["commit"].append(tool.commit_edit())
                results[tool.label]["first"].append(tool.first_answer())
        base = {k: statistics.median(v) for k, v in results["Git LFS"].items()}
        print(f"{'tool':10} {'git add 4 KiB':>20} {'git commit -a':>20} {'filter 1st answer':>20} {'imports':>9}")
        for tool in tools:
            med = {k: statistics.median(v) for k, v in results[tool.label].items()}
            cells = [f"{med[k] * 1000:7.1f} ms ({med[k] / base[k]:4.2f}x)" for k in ("add", "commit", "first")]
            imports = import_ms(tool.exe) if tool.sub == "mlx" else None
            shown = "" if imports is None else f"{imports:6.1f} ms"
            print(f"{tool.label:10} {cells[0]:>20} {cells[1]:>20} {cells[2]:>20} {shown:>9}")
        print(f"({args.reps} reps, interleaved in random order; medians; ratio to Git LFS)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
