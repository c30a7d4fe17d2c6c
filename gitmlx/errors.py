"""Errors gitmlx expects, and the exit statuses they map to.

Owns: the exception types every layer raises for a *known* failure. A known failure is
shown to the user as one `error: ...` line (plus an optional `hint: ...` line) and exits 1;
anything else is a bug and the CLI turns it into exit 3 with a traceback in a log file.
Must not: print, or import anything outside the standard library.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_BUG = 3
EXIT_INTERRUPTED = 130


class MlxError(Exception):
    """A failure the user can act on: a one-line message and an optional fix."""

    exit_status = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(MlxError):
    """The command line itself is wrong (exit 2)."""

    exit_status = EXIT_USAGE


class ConfigError(MlxError):
    """A configuration value is missing or malformed."""


class RemoteError(MlxError):
    """The artifact remote failed; the message names the remote without credentials."""


class ObjectNotFound(RemoteError):
    """The remote (or the store) does not hold the object asked for."""


class IntegrityError(MlxError):
    """Bytes did not hash to the oid they were fetched for; nothing was kept."""


class NotARepository(MlxError):
    """The command needs a git repository and the current directory is not in one."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"not a git repository: '{path}'",
            "run this inside a git repository, or 'git init' one first",
        )


def shown(value: object, limit: int = 60) -> str:
    """repr(value) for an error message, clipped to about `limit` characters: values come
    from files and remotes, and one clear line must stay one line whatever they hold."""
    try:
        text = repr(value)
    except RecursionError:  # a structure nested deeper than repr goes
        text = f"<{type(value).__name__} nested too deep>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
