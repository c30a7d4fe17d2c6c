"""Which git command started this filter, read from /proc: git tells its filter nothing
about the command it runs, yet the filter must behave differently under git's sequencer
(docs/design.md, "Checkout") and keep quiet under `--quiet`.

Owns: finding the nearest ancestor process that is git (git starts the filter through
`sh -c`, so the parent is usually the shell) and reading its command line.
Must not: start a process; without /proc (not Linux) every answer is "no".
"""

from __future__ import annotations

import os

from gitmlx.osutil import portable

#: git commands that run several checkouts against one in-memory index (the sequencer, am).
SEQUENCERS = frozenset({b"rebase", b"cherry-pick", b"revert", b"am"})
#: git's global options that take a value as the next argument (git(1), OPTIONS).
_GIT_OPTIONS_WITH_VALUE = frozenset({b"-c", b"-C", b"--git-dir", b"--work-tree", b"--namespace", b"--config-env"})


def _command_at(argv: list[bytes]) -> int | None:
    """The index of the subcommand in a git command line, past git's global options."""
    args = enumerate(argv[1:], start=1)
    for i, arg in args:
        if arg in _GIT_OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith(b"-"):
            return i
    return None


def git_command(argv: list[bytes]) -> bytes | None:
    """The subcommand of a git command line (`git -C x -c a=b rebase main` -> b"rebase")."""
    at = _command_at(argv)
    return None if at is None else argv[at]


def git_ancestor_argv() -> list[bytes] | None:
    """The command line of the nearest ancestor process that is git (None if not found,
    and always None under GIT_MLX_PORTABLE, as on a system without /proc)."""
    if portable.enabled():
        return None
    pid = os.getppid()
    for _ in range(4):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().rstrip(b"\0").split(b"\0")
            with open(f"/proc/{pid}/stat", "rb") as f:
                parent = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        if argv and os.path.basename(argv[0]) in (b"git", b"git.exe"):
            return argv
        pid = parent
    return None


def parent_is_sequencer() -> bool:
    """Whether the git that started this filter is one of SEQUENCERS."""
    argv = git_ancestor_argv()
    return argv is not None and git_command(argv) in SEQUENCERS


def quiet_options(argv: list[bytes]) -> bool:
    """Whether a git command line asks its subcommand to be quiet (`-q`, `--quiet`, before
    any `--`): `git clone -q URL`, `git -c a=b checkout --quiet main`."""
    at = _command_at(argv)
    if at is None:
        return False
    for arg in argv[at + 1 :]:
        if arg == b"--":
            return False
        if arg in (b"-q", b"--quiet") or (arg.startswith(b"-") and not arg.startswith(b"--") and b"q" in arg[1:]):
            return True
    return False


def parent_is_quiet() -> bool:
    """Whether the git that started this filter runs with `--quiet`."""
    argv = git_ancestor_argv()
    return argv is not None and quiet_options(argv)
