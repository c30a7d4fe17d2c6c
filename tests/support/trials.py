"""Running commands that get killed, and counting what the trials found.

Owns: starting a command in its own process group and SIGKILLing the whole group (git,
its filter process, its hooks and their `git-mlx` children) after a delay; the pid of a
process that is gone; the tally a loop of trials keeps; and appending that tally as one
JSON line to the file named by GITMLX_RELIABILITY_LOG (how docs/threat-model.md's table
was filled).
Must not: signal any process outside the group it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Run:
    returncode: int | None  # None when killed
    stdout: str
    stderr: str
    seconds: float

    @property
    def killed(self) -> bool:
        return self.returncode is None


def run_until(args: Sequence[str], cwd: Path, delay: float | None, env: dict[str, str] | None = None) -> Run:
    """Run `args` in a new session; after `delay` seconds, SIGKILL its whole process group."""
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.monotonic()
        proc = subprocess.Popen(
            list(args), cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True
        )
        killed = False
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            killed = True
        seconds = time.monotonic() - start
        wait_group_gone(proc.pid)
        out.seek(0)
        err.seek(0)
        return Run(
            None if killed else proc.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            seconds,
        )


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped: no process has it (pid reuse
    within a test is unlikely)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _live_members(pgid: int) -> list[int]:
    """Processes of group `pgid` that are not zombies (read from /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            members.append(int(entry))
    return members


def wait_group_gone(pgid: int, timeout: float = 10.0, kill: bool = True) -> None:
    """Until nothing of the group runs any more. With `kill`, SIGKILL it again meanwhile
    (a SIGKILL to a group is not instant); without, let the members finish on their own."""
    deadline = time.monotonic() + timeout
    while _live_members(pgid):
        if time.monotonic() > deadline:
            _kill_group(pgid)
            raise AssertionError(f"process group {pgid} still running after {timeout} s")
        if kill:
            _kill_group(pgid)
        time.sleep(0.02)


@dataclass
class Tally:
    """What a loop of trials found. Every list must end empty."""

    name: str
    trials: int = 0
    killed: int = 0  # the command was still running when SIGKILL came
    injected: int = 0  # faults a proxy injected
    detected: int = 0  # files a fault left as pointers, each named in a message
    corrupt: list[str] = field(default_factory=list)  # objects under valid names with wrong bytes
    wrong_bytes: list[str] = field(default_factory=list)  # work-tree files neither content, pointer nor absent
    tracebacks: list[str] = field(default_factory=list)
    rerun_failures: list[str] = field(default_factory=list)
    fsck: list[str] = field(default_factory=list)
    git_locks_removed: int = 0  # git's own index.lock left by the kill, removed as git says
    tmp_leftovers: set[str] = field(default_factory=set)  # temporary files killed writers left (allowed)
    git_truncated: int = 0  # files git itself was writing when killed: a prefix of the content (counted)
    notes: list[str] = field(default_factory=list)

    def failures(self) -> dict[str, list[str]]:
        found = {
            "corrupt": self.corrupt,
            "wrong_bytes": self.wrong_bytes,
            "tracebacks": self.tracebacks,
            "rerun_failures": self.rerun_failures,
            "fsck": self.fsck,
        }
        return {k: v for k, v in found.items() if v}

    def record(self) -> None:
        target = os.environ.get("GITMLX_RELIABILITY_LOG")
        if target:
            record = asdict(self)
            record["tmp_leftovers"] = len(self.tmp_leftovers)
            record["tmp_leftover_names"] = sorted(self.tmp_leftovers)[:100]
            with open(target, "a") as f:
                f.write(json.dumps(record) + "\n")

    def assert_clean(self) -> None:
        self.record()
        assert not self.failures(), f"{self.name}: {self.trials} trials:\n" + "\n".join(
            f"  {k}: {v[:5]}" for k, v in self.failures().items()
        )


def at_once(*commands: tuple[list[str], Path]) -> list[subprocess.CompletedProcess]:
    """Start every command, then wait for all: they overlap for most of their run."""
    procs = [
        subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for args, cwd in commands
    ]
    results = []
    for proc, (args, _) in zip(procs, commands, strict=True):
        out, err = proc.communicate(timeout=300)
        results.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return results
