"""Which Linux-only system calls gitmlx's own processes make, seen by strace.

Owns: running a command under `strace -f` and attributing each call to the program the
process (or the process it was forked from) last executed, so that the calls git makes
itself (it may fdatasync, say) are not counted against gitmlx.
Must not: import gitmlx.
"""

from __future__ import annotations

import collections
import functools
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

#: The calls with a portable fallback (gitmlx/osutil/portable.py), as strace names them,
#: each with a pattern its line must match to count (ioctl, fcntl and openat do many
#: things). Not fdatasync: SQLite (the store's index) calls it itself on Linux. Not every
#: /proc read: glibc's malloc reads /proc/sys/vm on its own.
LINUX_ONLY = {
    "renameat2": "",
    "copy_file_range": "",
    "ioctl": "FICLONE",
    "sync_file_range": "",
    "fadvise64": "",
    "syncfs": "",
    "fcntl": "F_SETPIPE_SZ",
    "openat": r'"/proc/(\d|sys/kernel/random/boot_id)',
}
_FORKS = ("clone", "clone3", "vfork", "fork")
_LINE = re.compile(r"^(\d+)\s+(?:<\.\.\. (\w+) resumed>|(\w+)\()(.*)$")
_RESULT = re.compile(r"=\s+(-?\d+)")
_EXEC_PATH = re.compile(r'^"([^"]*)"')

STRACE = shutil.which("strace")


@functools.cache
def strace_works() -> bool:
    """Whether strace is here and may trace (a container may forbid ptrace)."""
    if STRACE is None or not sys.platform.startswith("linux"):
        return False
    return subprocess.run([STRACE, "-f", "-qq", "-o", os.devnull, "true"], capture_output=True).returncode == 0


def gitmlx_calls(
    args: Sequence[str], cwd: Path, env: Mapping[str, str], trace: Path, program: str = "git-mlx"
) -> collections.Counter[str]:
    """Run `args` under strace; how often processes running `program` made each call of
    LINUX_ONLY. Fails the test if the command fails."""
    calls = ",".join(["execve", *_FORKS, *LINUX_ONLY])
    proc = subprocess.run(
        [STRACE or "strace", "-f", "-qq", "-s", "200", "-e", f"trace={calls}", "-o", str(trace), *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return count(trace.read_text(errors="replace").splitlines(), program)


def count(lines: Sequence[str], program: str) -> collections.Counter[str]:
    running: dict[str, str] = {}  # pid -> the program it runs
    pending: dict[str, str] = {}  # pid -> the path of an execve not finished yet
    found: collections.Counter[str] = collections.Counter()
    for line in lines:
        match = _LINE.match(line)
        if not match:
            continue
        pid, resumed, name, rest = match.group(1), match.group(2), match.group(3), match.group(4)
        call = resumed or name
        result = _RESULT.search(rest) if "<unfinished" not in rest else None
        if call == "execve":
            if name:
                path = _EXEC_PATH.match(rest)
                pending[pid] = path.group(1) if path else ""
            if result and result.group(1) == "0":
                running[pid] = Path(pending.pop(pid, "")).name
        elif call in _FORKS:
            if result and int(result.group(1)) > 0:
                running[result.group(1)] = running.get(pid, "")
        elif name and call in LINUX_ONLY and running.get(pid) == program and re.search(LINUX_ONLY[call], rest):
            found[call] += 1
    return found
