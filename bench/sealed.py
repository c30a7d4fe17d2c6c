"""Sealed sandboxes: one per (workload, tool), so gitmlx and Git LFS never see each other.

A sandbox is a directory with its own HOME (holding the only global git config it reads),
TMPDIR and logs. Its environment is built from scratch, not inherited:

* GIT_CONFIG_NOSYSTEM=1 and GIT_CONFIG_GLOBAL=$HOME/.gitconfig: no system or user config;
* pinned identity and dates, LC_ALL=C.UTF-8, no prompts, GIT_CEILING_DIRECTORIES at the
  sandbox root (no repository above it is ever found);
* PATH = [wrappers] + the folder of the real `git-mlx` script + /usr/local/bin:/usr/bin:/bin.
  The real script is used, not a pyenv shim (a shim costs a bash + pyenv start per call).

The global config is written by `git config --global` (identity, init.defaultBranch) and by
the tool's own installer: `git mlx install` in the gitmlx HOME, `git lfs install` in the
Git LFS HOME. After installing, the sandbox checks that its config defines its own filter
and not the other tool's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from procmon import Measured, measure

SYSTEM_PATH = "/usr/bin:/bin"  # not /usr/local/bin: an installed git-mlx there would leak in
IDENTITY = {
    "GIT_AUTHOR_NAME": "gitmlx bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "gitmlx bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
}
WRAPPER_LOG_VAR = "GITMLX_BENCH_RSS_LOG"


class BenchError(RuntimeError):
    pass


def gitmlx_env(root: Path, python_bin: Path) -> dict[str, str]:
    """A plain environment for a one-tool bench (no Git LFS beside it): HOME under `root`
    with only `git mlx install`'s global config, the `git-mlx` of `python_bin`'s folder on
    PATH, an identity, and TMPDIR and GIT_CEILING_DIRECTORIES at `root`."""
    home = root / "home"
    home.mkdir()
    env = {
        "PATH": f"{python_bin}:{SYSTEM_PATH}",
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_CEILING_DIRECTORIES": str(root),
        "TMPDIR": str(root),
        "LC_ALL": "C.UTF-8",
        **{k: v for k, v in IDENTITY.items() if not k.endswith("_DATE")},
    }
    for args in (["git", "config", "--global", "init.defaultBranch", "main"], ["git", "mlx", "install"]):
        subprocess.run(args, cwd=root, env=env, check=True, capture_output=True)
    return env


@dataclass(frozen=True)
class Tool:
    key: str  # "mlx" | "lfs": JSON and file names
    label: str  # for tables
    sub: str  # `git <sub> ...`
    exe_name: str  # the executable git runs, also its comm name in /proc
    exe: Path  # the real executable
    filter_name: str


def make_tools(git_mlx: Path, git_lfs: Path) -> dict[str, Tool]:
    return {
        "mlx": Tool("mlx", "gitmlx", "mlx", "git-mlx", git_mlx, "mlx"),
        "lfs": Tool("lfs", "Git LFS", "lfs", "git-lfs", git_lfs, "lfs"),
    }


def write_wrapper(directory: Path, tool: Tool) -> Path:
    """A folder holding one script named like the tool (`git-mlx` or `git-lfs`) that runs the
    real binary under /usr/bin/time, appending `<maxrss KiB> <name> <seconds>` to
    $GITMLX_BENCH_RSS_LOG (or /dev/null when unset). Each tool gets its own folder."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / tool.exe_name
    script.write_text(
        "#!/bin/sh\n"
        f'exec /usr/bin/time -a -o "${{{WRAPPER_LOG_VAR}:-/dev/null}}" -f "%M {tool.exe_name} %e" '
        f'"{tool.exe}" "$@"\n'
    )
    script.chmod(0o755)
    return directory


class Sandbox:
    def __init__(
        self, root: Path, tool: Tool, wrappers: Path | None, poll_interval: float, remotes: Path | None = None
    ) -> None:
        self.root = root
        self.remotes = remotes or root  # where bare remotes are created
        self.tool = tool
        self.home = root / "home"
        self.tmp = root / "tmp"
        self.log = root / "commands.log"
        self.wrapper_log = root / "wrapper-rss.log"
        self.wrappers = wrappers
        self.poll_interval = poll_interval
        # the tool's own folder first: for gitmlx the interpreter's bin folder, never a shim
        path = [str(tool.exe.parent), SYSTEM_PATH]
        if wrappers is not None:
            path.insert(0, str(wrappers))
        self.env = {
            "PATH": ":".join(path),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(self.home / ".gitconfig"),
            "GIT_CEILING_DIRECTORIES": str(root),
            "GIT_TERMINAL_PROMPT": "0",
            "TMPDIR": str(self.tmp),
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            **IDENTITY,
        }

    # -- set-up ---------------------------------------------------------------------------
    def create(self) -> Sandbox:
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.remotes, ignore_errors=True)
        for d in (self.home, self.tmp, self.remotes):
            d.mkdir(parents=True, exist_ok=True)
        for key, value in (
            ("user.name", IDENTITY["GIT_AUTHOR_NAME"]),
            ("user.email", IDENTITY["GIT_AUTHOR_EMAIL"]),
            ("init.defaultBranch", "main"),
            ("advice.detachedHead", "false"),
        ):
            self.git("config", "--global", key, value, cwd=self.home)
        self.git(self.tool.sub, "install", cwd=self.home)
        self.check_sealed()
        return self

    def check_sealed(self) -> None:
        out = self.git("config", "--show-origin", "--list", cwd=self.home)
        for line in out.splitlines():
            origin = line.split("\t", 1)[0]
            if origin != f"file:{self.home / '.gitconfig'}":
                raise BenchError(f"{self.tool.label} sandbox reads config outside its HOME: {line}")
        filters = {line.split("=", 1)[0] for line in out.splitlines() if "\tfilter." in line}
        mine = {f"filter.{self.tool.filter_name}.{k}" for k in ("process", "clean", "smudge", "required")}
        names = {f.split("\t", 1)[1] for f in filters}
        if not mine <= names or names - mine:
            raise BenchError(f"{self.tool.label} sandbox has filters {sorted(names)}, expected exactly {sorted(mine)}")
        found = shutil.which(self.tool.exe_name, path=self.env["PATH"])
        expected = {str(self.tool.exe)} | ({str(self.wrappers / self.tool.exe_name)} if self.wrappers else set())
        if found not in expected:
            raise BenchError(f"{self.tool.exe_name} resolves to {found} on the sandbox PATH, not {self.tool.exe}")
        if self.tool.key == "lfs" and shutil.which("git-mlx", path=self.env["PATH"]) is not None:
            raise BenchError("git-mlx is reachable from the Git LFS sandbox")

    def destroy(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.remotes, ignore_errors=True)

    # -- running --------------------------------------------------------------------------
    def run(self, *argv: str, cwd: Path) -> str:
        """Untimed command; its output is returned, failure raises with the output."""
        proc = subprocess.run(
            list(argv), cwd=cwd, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        with open(self.log, "a") as log:
            log.write(f"\n$ {' '.join(argv)}   (cwd {cwd})\n{proc.stdout}{proc.stderr}")
        if proc.returncode != 0:
            raise BenchError(
                f"[{self.tool.label}] `{' '.join(argv)}` in {cwd} exited {proc.returncode}:\n"
                f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            )
        return proc.stdout

    def git(self, *args: str, cwd: Path) -> str:
        return self.run("git", *args, cwd=cwd)

    def timed(self, *argv: str, cwd: Path) -> Measured:
        """A measured command (wall time and the peak RSS of its process tree)."""
        os.sync()  # start from no dirty pages: earlier writes are not billed to this command
        env = dict(self.env)
        if self.wrappers is not None:
            env[WRAPPER_LOG_VAR] = str(self.wrapper_log)
        m = measure(
            list(argv),
            cwd,
            env,
            self.log,
            self.poll_interval,
            self.wrapper_log if self.wrappers is not None else None,
        )
        if m.returncode != 0:
            tail = self.log.read_text()[-3000:]
            raise BenchError(f"[{self.tool.label}] `{' '.join(argv)}` exited {m.returncode}; log tail:\n{tail}")
        return m

    def timed_git(self, *args: str, cwd: Path) -> Measured:
        return self.timed("git", *args, cwd=cwd)
