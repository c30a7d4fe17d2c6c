"""Run one command and measure it: wall time, and the peak RSS of every process in its tree.

Peak RSS comes from two sources:

* a poller thread that, every `interval` seconds, walks the launched process's descendants
  (through `/proc/<pid>/task/<tid>/children`, so it touches only the tree, not all of
  /proc) and reads `VmHWM` (the kernel's resident-set high-water mark) from each one's
  `/proc/<pid>/status`. Since VmHWM never decreases, a process that lives longer than one
  interval is captured up to its last sample; only growth in its final few milliseconds,
  or a process shorter than an interval, can be missed. Results are keyed by the kernel's
  command name (`comm`: `git`, `git-mlx`, `git-lfs`, `sh`, ...).
* optionally, `/usr/bin/time` wrappers around the tool binaries (see `sealed.py`), which
  log `ru_maxrss` at exit: exact, but it is the maximum over the wrapped process *and its
  descendants* (wait4 semantics), so it is only used as a cross-check of the poller.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                kids.extend(int(x) for x in f.read().split())
        except (OSError, ValueError):
            continue
    return kids


def _name_and_hwm(pid: int) -> tuple[str, int] | None:
    """(comm, VmHWM in KiB), or None for a vanished process or a zombie (no mm left)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            text = f.read()
    except OSError:
        return None
    name = ""
    hwm = -1
    for line in text.splitlines():
        if line.startswith(b"Name:"):
            name = line[5:].strip().decode("utf-8", "replace")
        elif line.startswith(b"VmHWM:"):
            hwm = int(line.split()[1])
            break
    if hwm < 0:
        return None
    return name, hwm


def _summary(pid: int, name: str) -> str:
    """`name subcommand` from the command line, e.g. `git-mlx filter-process`, `git status`:
    the first non-option argument after the program (for a script, after the script)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            args = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return name
    start = 0
    for i, arg in enumerate(args):
        if os.path.basename(arg)[:15] == name:
            start = i + 1
            break
    else:
        return name
    skip = False
    for arg in args[start:]:
        if skip:
            skip = False
        elif arg in ("-c", "-C"):
            skip = True
        elif not arg.startswith("-"):
            return f"{name} {arg}"
    return name


class TreePoller:
    """Samples VmHWM of `root` and all its descendants until stopped."""

    def __init__(self, root: int, interval: float) -> None:
        self.root = root
        self.interval = interval
        # (pid, comm) -> max VmHWM KiB. A pid that execs keeps its mm's HWM reset by exec,
        # and its comm changes, so (pid, comm) is the identity of one program run.
        self.per_process: dict[tuple[int, str], int] = {}
        self.summaries: dict[tuple[int, str], str] = {}  # (pid, comm) -> `comm subcommand`
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tree-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        todo = [self.root]
        seen: set[int] = set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            got = _name_and_hwm(pid)
            if got is not None:
                key = (pid, got[0])
                if key not in self.summaries:
                    self.summaries[key] = _summary(pid, got[0])
                if got[1] > self.per_process.get(key, -1):
                    self.per_process[key] = got[1]
            todo.extend(_children(pid))
        self.samples += 1

    def _loop(self) -> None:
        while True:
            self._sample()
            if self._stop.wait(self.interval):
                return

    def peaks_by_name(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_pid, name), kib in self.per_process.items():
            out[name] = max(out.get(name, 0), kib)
        return out

    def peaks_by_command(self) -> dict[str, int]:
        """Max VmHWM per `comm subcommand` (which git-mlx / git-lfs / git commands ran)."""
        out: dict[str, int] = {}
        for key, kib in self.per_process.items():
            cmd = self.summaries.get(key, key[1])
            out[cmd] = max(out.get(cmd, 0), kib)
        return out

    def process_count_by_name(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _pid, name in self.per_process:
            out[name] = out.get(name, 0) + 1
        return out


@dataclass
class Measured:
    argv: list[str]
    seconds: float
    returncode: int
    rss_kib: dict[str, int]  # poller: max VmHWM per command name
    processes: dict[str, int]  # poller: how many distinct processes per command name were seen
    commands: dict[str, int]  # poller: max VmHWM per `name subcommand` (e.g. `git-mlx filter-process`)
    wrapper_rss_kib: dict[str, int] = field(default_factory=dict)  # /usr/bin/time: tool tree maxrss
    samples: int = 0


def read_wrapper_log(path: Path) -> dict[str, int]:
    """Lines `<maxrss KiB> <tool name> ...` appended by the wrappers; max per tool."""
    out: dict[str, int] = {}
    try:
        text = path.read_text()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            out[parts[1]] = max(out.get(parts[1], 0), int(parts[0]))
    return out


def measure(
    argv: list[str],
    cwd: Path,
    env: dict[str, str],
    log: Path,
    interval: float,
    wrapper_log: Path | None = None,
) -> Measured:
    """Run argv to completion; stdout and stderr are appended to `log` (never a terminal)."""
    if wrapper_log is not None:
        wrapper_log.unlink(missing_ok=True)
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(argv)}   (cwd {cwd})\n".encode())
        out.flush()
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        poller = TreePoller(proc.pid, interval)
        poller.start()
        returncode = proc.wait()
        seconds = time.perf_counter() - start
        poller.stop()
    return Measured(
        argv=argv,
        seconds=seconds,
        returncode=returncode,
        rss_kib=poller.peaks_by_name(),
        processes=poller.process_count_by_name(),
        commands=poller.peaks_by_command(),
        wrapper_rss_kib=read_wrapper_log(wrapper_log) if wrapper_log is not None else {},
        samples=poller.samples,
    )
