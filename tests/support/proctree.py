"""Peak memory of the processes a command starts, seen from outside them.

Owns: walking a process's descendants through /proc and keeping each one's high-water
mark of resident memory (`VmHWM` in `/proc/<pid>/status`), by program run. Linux only.
Used by the e2e tests that bound git-mlx's memory and by the benchmarks (bench/procmon.py).
Must not: import gitmlx, or signal or slow down the processes it watches.

VmHWM never decreases, so a process that lives longer than one sampling interval is
captured up to its last sample; only growth in its final interval, or a process shorter
than an interval, can be missed. A wrapper's getrusage(RUSAGE_CHILDREN) would be exact at
exit but counts the largest of the process *and every descendant it waited for*, so a
git-mlx process would be charged for the git processes it runs.
"""

from __future__ import annotations

import os
import threading


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


class Watching:
    """`with Watching() as watch:` samples this process's descendants every `interval`
    seconds until the block ends; `watch.peaks("git-mlx")` then maps each `git-mlx
    <subcommand>` that ran to the largest VmHWM (KiB) one such process reached."""

    def __init__(self, interval: float = 0.01) -> None:
        self.poller = TreePoller(os.getpid(), interval)

    def __enter__(self) -> Watching:
        self.poller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.poller.stop()

    def peaks(self, program: str) -> dict[str, int]:
        return {
            command: kib
            for command, kib in self.poller.peaks_by_command().items()
            if command == program or command.startswith(program + " ")
        }
