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

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.proctree import TreePoller  # noqa: E402


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
