"""The one place that runs the `git` binary.

Owns: spawning git (a command run to completion, its output streamed, or a process kept
open to answer requests), locating a repository's directories, reading git config with
scopes.
Must not: parse pointers or know about the store, or import `subprocess` at module level:
the filter reads its config through `posix_spawn` before its first answer, and most filter
processes never need `subprocess` (with `signal`, `selectors` and `locale`) at all.
"""

from __future__ import annotations

import os
from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from gitmlx.errors import MlxError, NotARepository

TYPE_CHECKING = False  # type checkers take it as True: typing stays off the filter's start-up
if TYPE_CHECKING:
    from typing import IO, Protocol

    class _Sink(Protocol):
        def write(self, data: bytes, /) -> object: ...


class GitError(MlxError):
    """A git command failed; the message carries git's own first error line."""


def run_git(
    args: Sequence[str],
    cwd: Path | str | None = None,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> bytes:
    """Run `git ARGS` and return its stdout; raise GitError with git's message on failure."""
    import subprocess

    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=input,
        env=dict(env) if env is not None else None,
        capture_output=True,
    )
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        first = message[0] if message else f"exit status {proc.returncode}"
        raise GitError(f"git {args[0]} failed: {first.removeprefix('fatal: ')}")
    return proc.stdout


def stream_git(args: Sequence[str], sink: _Sink, cwd: Path | str | None = None, block: int = 1024 * 1024) -> None:
    """Run `git ARGS` and copy its stdout into `sink` in blocks (bounded memory)."""
    import subprocess

    with subprocess.Popen(
        ["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        while data := proc.stdout.read(block):
            sink.write(data)
        stderr = proc.stderr.read()
    if proc.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip().splitlines()
        first = message[0] if message else f"exit status {proc.returncode}"
        raise GitError(f"git {args[0]} failed: {first.removeprefix('fatal: ')}")


class GitOutput:
    """`git ARGS` run to completion, its stdout read as a stream while a thread writes
    `input` to its stdin: `with GitOutput(...) as out: ...` reads `out` (a binary file).

    For outputs as large as the repository (`ls-tree -r` of 100,000 files, `cat-file
    --batch` of their pointers): run_git holds the whole output, twice while it joins
    the pieces it read, and the pieces freed after it leave the process's heap larger
    for the rest of a hook's run. The exit status is checked when the block ends (then
    GitError, as run_git, with `check`); leaving the block early, or with an exception,
    kills git.
    """

    def __init__(
        self, args: Sequence[str], cwd: Path | str | None = None, input: bytes | None = None, check: bool = True
    ) -> None:
        import subprocess
        import threading

        self._args, self._check = args, check
        self._proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=256 * 1024,
        )
        self._stderr: list[bytes] = []
        self._threads = [threading.Thread(target=self._read_stderr, daemon=True)]
        if input is not None:
            self._threads.append(threading.Thread(target=self._write, args=(input,), daemon=True))
        for thread in self._threads:
            thread.start()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        self._stderr.append(self._proc.stderr.read())

    def _write(self, data: bytes) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            stdin.close()
        except OSError:
            pass  # git exited early (an error, or killed): its status says why

    def __enter__(self) -> IO[bytes]:
        assert self._proc.stdout is not None
        return self._proc.stdout

    def __exit__(self, exc_type: object, *_: object) -> None:
        proc = self._proc
        assert proc.stdout is not None
        complete = exc_type is None and not proc.stdout.read(1)
        if not complete:
            proc.kill()
        proc.stdout.close()
        for thread in self._threads:
            thread.join()
        proc.wait()
        if complete and self._check and proc.returncode != 0:
            message = b"".join(self._stderr).decode("utf-8", "replace").strip().splitlines()
            first = message[0] if message else f"exit status {proc.returncode}"
            raise GitError(f"git {self._args[0]} failed: {first.removeprefix('fatal: ')}")


def nul_records(stream: IO[bytes], block: int = 256 * 1024) -> Iterator[bytes]:
    """The NUL-terminated records of `stream` (git's `-z` output), one at a time, read a
    block at a time: never the whole output, nor a bytes object per record at once."""
    rest = b""
    while data := stream.read(block):
        data = rest + data if rest else data
        start = 0
        while (end := data.find(b"\0", start)) >= 0:
            if end > start:
                yield data[start:end]
            start = end + 1
        rest = data[start:]
    if rest:
        yield rest


class GitProcess:
    """A git process kept open to answer requests one at a time on stdin and stdout.

    For callers that ask once per blob or path while something else drives the loop
    (`cat-file --batch` and `check-attr --stdin` inside a history rewrite): run_git only
    runs a command to completion, so it would cost one process per question. GIT_FLUSH=1
    makes git flush each answer, so it can be read before the next request is written.
    git's stderr is not captured: it goes where ours goes. Leaving the `with` block
    closes git's stdin and waits for it to exit.
    """

    def __init__(self, args: Sequence[str], cwd: Path | str) -> None:
        import subprocess

        env = dict(os.environ, GIT_FLUSH="1")
        self._proc = subprocess.Popen(["git", *args], cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def ask(self, request: bytes) -> IO[bytes]:
        """Write one request; return the stream to read git's answer from."""
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(request)
        stdin.flush()
        return stdout

    def close(self) -> None:
        if self._proc.stdin:
            self._proc.stdin.close()
        self._proc.wait()

    def __enter__(self) -> GitProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def env_for_other_repo() -> dict[str, str]:
    """The environment minus GIT_* repository variables.

    Hooks and filters run with GIT_DIR, GIT_INDEX_FILE and friends set for *their* repo;
    a git spawned for another repository (a clone in `demo`) must not inherit them.
    """
    keep = {"GIT_CONFIG_NOSYSTEM", "GIT_TERMINAL_PROMPT", "GIT_TRACE", "GIT_CONFIG_GLOBAL"}
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in keep}


class RepoPaths(namedtuple("_RepoPathsFields", ("git_dir", "common_dir", "work_tree"))):
    """Where a repository lives: its `git_dir`, the `common_dir` shared by worktrees, and
    the top of its `work_tree` (a Path, None when bare)."""

    __slots__ = ()

    @property
    def is_bare(self) -> bool:
        return self.work_tree is None


def repo_paths(cwd: Path | str | None = None) -> RepoPaths:
    """Locate the repository containing `cwd` (one git call)."""
    import subprocess

    proc = subprocess.run(
        ["git", "rev-parse", "--absolute-git-dir", "--git-common-dir", "--show-toplevel"],
        cwd=cwd,
        capture_output=True,
    )
    lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
    if proc.returncode != 0 and len(lines) < 2:
        raise NotARepository(str(Path(cwd or os.getcwd()).resolve()))
    git_dir = Path(lines[0])
    common = Path(lines[1])
    if not common.is_absolute():
        common = (Path(cwd or os.getcwd()) / common).resolve()
    work_tree = Path(lines[2]) if len(lines) > 2 and lines[2] else None
    return RepoPaths(git_dir, common, work_tree)


#: Variables that move the repository away from what `.git` in the top folder says.
_RELOCATING = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR")


def repo_paths_at_top(cwd: Path | str | None = None) -> RepoPaths:
    """repo_paths for a process git started in the top folder of a work tree (filters run
    there, gitattributes(5)): read `.git` (a folder, or a file naming one) and its
    `commondir` instead of starting `git rev-parse`. Anything else (a relocating variable,
    `.git` a symlink or missing, no HEAD) asks git."""
    if any(os.environ.get(name) for name in _RELOCATING):
        return repo_paths(cwd)
    top = Path(os.path.realpath(cwd if cwd is not None else os.getcwd()))
    dotgit = top / ".git"
    try:
        if dotgit.is_symlink():
            return repo_paths(cwd)
        if dotgit.is_dir():
            git_dir = dotgit
        else:
            text = dotgit.read_text(encoding="utf-8", errors="surrogateescape")
            if not text.startswith("gitdir: "):
                return repo_paths(cwd)
            git_dir = Path(os.path.realpath(top / text[len("gitdir: ") :].strip()))
        if not (git_dir / "HEAD").is_file():
            return repo_paths(cwd)
        try:
            common_text = (git_dir / "commondir").read_text(encoding="utf-8", errors="surrogateescape").strip()
        except FileNotFoundError:
            common = git_dir
        else:
            common = Path(os.path.realpath(git_dir / common_text))
    except (OSError, ValueError):
        return repo_paths(cwd)
    return RepoPaths(git_dir, common, top)


def index_location(cwd: Path | str) -> tuple[Path, str]:
    """The index file git uses here (GIT_INDEX_FILE, worktrees) and the object format."""
    out = run_git(["rev-parse", "--git-path", "index", "--show-object-format"], cwd=cwd)
    lines = out.decode("utf-8", "surrogateescape").splitlines()
    path = Path(lines[0])
    return (path if path.is_absolute() else Path(cwd) / path), lines[1]


class ConfigEntry(namedtuple("_ConfigEntryFields", ("key", "value", "scope"))):
    """One git config entry; `scope` is "system", "global", "local", "worktree", "command"
    or "file"."""

    __slots__ = ()


def read_config(cwd: Path | str | None = None, file: Path | None = None, blob: str | None = None) -> list[ConfigEntry]:
    """All config entries in git's precedence order (later wins), with their scope.

    With `file` or `blob`, read that git-config-format file instead (used for
    `.mlxconfig`, which must be parsed exactly as git parses config).
    """
    args = ["config", "--list", "-z"]
    if file is not None:
        args[1:1] = ["--file", str(file)]
    elif blob is not None:
        args[1:1] = ["--blob", blob]
    else:
        args.insert(1, "--show-scope")
    if file is None and blob is None:
        status, out = _taken_ahead(cwd) or _collect(*_spawn(args, cwd))
        if status != 0:
            return []
    else:
        import subprocess

        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True)
        if proc.returncode != 0:
            raise MlxError(
                f"cannot read '{file or blob}': "
                + proc.stderr.decode("utf-8", "replace").strip().removeprefix("fatal: "),
                "fix the file's syntax (it uses git config format)",
            )
        out = proc.stdout
    records = out.split(b"\0")
    if records and records[-1] == b"":
        records.pop()
    entries = []
    # With --show-scope, -z output is "scope NUL key LF value NUL" per entry.
    step = 2 if file is None and blob is None else 1
    for i in range(0, len(records) - step + 1, step):
        scope = records[i].decode() if step == 2 else "file"
        text = records[i + step - 1].decode("utf-8", "surrogateescape")
        key, _, value = text.partition("\n")
        entries.append(ConfigEntry(_normalise(key), value, scope))
    return entries


#: The config read `read_config_ahead` started: its folder, git's pid and the pipe of its
#: output, until the first `read_config()` of that folder takes it.
_ahead: tuple[str, int, int] | None = None


def read_config_ahead() -> None:
    """Start `read_config()` of the current folder now and return at once: the filter
    process imports its modules while git reads the config files, and its first
    read_config there takes this answer instead of starting git again."""
    global _ahead
    if _ahead is None:
        try:
            _ahead = (os.getcwd(), *_spawn(["config", "--show-scope", "--list", "-z"], None))
        except OSError:
            pass  # no git, or no folder: read_config says so when it is called


def _taken_ahead(cwd: Path | str | None) -> tuple[int, bytes] | None:
    """The answer of the read started ahead, when it was of `cwd` (else None)."""
    global _ahead
    ahead, _ahead = _ahead, None
    if ahead is None:
        return None
    folder, pid, pipe = ahead
    answer = _collect(pid, pipe)  # reaped even when it is not the folder asked about
    same = os.path.realpath(folder) == os.path.realpath(cwd if cwd is not None else os.getcwd())
    return answer if same else None


def _spawn(args: Sequence[str], cwd: Path | str | None) -> tuple[int, int]:
    """Start `git ARGS` with its stdout to a pipe and its stderr discarded; (pid, the
    pipe's read end). Without `subprocess`: the filter reads its config this way before its
    first answer, and every `git add` would wait for `subprocess`'s import. `-C` stands for
    the working directory (posix_spawn has none); stdin is inherited, as with run_git."""
    argv = ["git", *(("-C", os.fspath(cwd)) if cwd is not None else ()), *args]
    read_end, write_end = os.pipe()
    try:
        actions = [(os.POSIX_SPAWN_DUP2, write_end, 1), (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
        pid = os.posix_spawnp("git", argv, os.environ, file_actions=actions)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return pid, read_end


def _collect(pid: int, read_end: int) -> tuple[int, bytes]:
    """A `_spawn`ed git's exit status and all of its stdout."""
    with open(read_end, "rb") as pipe:
        out = pipe.read()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), out


def _normalise(key: str) -> str:
    """Section and variable names are case-insensitive; a subsection is not."""
    section, _, rest = key.partition(".")
    if "." in rest:
        sub, _, var = rest.rpartition(".")
        return f"{section.lower()}.{sub}.{var.lower()}"
    return f"{section.lower()}.{rest.lower()}"


def set_config(
    key: str, value: str, scope: str = "local", cwd: Path | str | None = None, file: Path | None = None
) -> None:
    args = ["config"]
    args += ["--file", str(file)] if file is not None else [f"--{scope}"]
    run_git([*args, key, value], cwd=cwd)


def unset_config(key: str, scope: str = "local", cwd: Path | str | None = None, file: Path | None = None) -> None:
    args = ["config"]
    args += ["--file", str(file)] if file is not None else [f"--{scope}"]
    run_git([*args, "--unset-all", key], cwd=cwd, check=False)
