"""Running the real `git` (which spawns the real `git-mlx`) as a user would.

Owns: running a command with both output streams kept, and failing the test with them when
it exits non-zero unexpectedly.
Must not: import gitmlx: the tests drive it only through git and its command line.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"$ {' '.join(self.args)}\n[exit {self.returncode}]\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def run(
    args: Sequence[str | os.PathLike[str]],
    cwd: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = 600,
) -> Result:
    """Run a command; with `check`, fail the test (showing both streams) on a non-zero exit."""
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        timeout=timeout,
    )
    result = Result(
        tuple(str(a) for a in args),
        proc.returncode,
        proc.stdout.decode("utf-8", "surrogateescape"),
        proc.stderr.decode("utf-8", "surrogateescape"),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"command failed:\n{result}")
    return result


def git(*args: str | os.PathLike[str], cwd: Path | str, **kwargs) -> Result:
    return run(["git", *args], cwd, **kwargs)


def mlx(*args: str | os.PathLike[str], cwd: Path | str, **kwargs) -> Result:
    """`git mlx ARGS`: through git, as a user types it."""
    return run(["git", "mlx", *args], cwd, **kwargs)


def assert_no_traceback(*results: Result) -> None:
    for result in results:
        assert "Traceback" not in result.output, f"python traceback printed:\n{result}"


def run_in_pty(args: Sequence[str | os.PathLike[str]], cwd: Path | str, timeout: float = 300) -> tuple[int, bytes]:
    """Run a command with a pseudo-terminal as stdin, stdout and stderr (as a user at a
    terminal does); its exit status and everything it wrote, control sequences included."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen([str(a) for a in args], cwd=cwd, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                block = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not block:
                break
            out += block
    finally:
        os.close(master)
    return proc.wait(timeout=max(1.0, deadline - time.monotonic())), bytes(out)
