"""Talking to the person at the terminal: messages in git's style and progress bars.

Owns: every write to stderr/stdout outside cli.py, and tqdm (imported only when a bar is
actually drawn, so filters and hooks do not pay its import time).
Must not: decide anything; it only shows what it is told.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager

from gitmlx.errors import MlxError

# Not `typing.TYPE_CHECKING`: the filter process imports this module, and typing, pathlib,
# tempfile and dataclasses together cost it more than the rest of its start-up.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path
    from typing import TextIO


def _err() -> TextIO:
    return sys.stderr


def error(message: str, hint: str | None = None) -> None:
    out = _err()
    out.write(f"error: {message}\n")
    if hint:
        out.write(f"hint: {hint}\n")
    out.flush()


def error_line(message: str, hint: str | None = None) -> None:
    """One line for failures inside a filter, where git interleaves many files' output."""
    text = f"error: {message}" + (f"; {hint}" if hint else "")
    _err().write(text + "\n")
    _err().flush()


def report(exc: MlxError) -> None:
    error(exc.message, exc.hint)


def warn(message: str) -> None:
    _err().write(f"warning: {message}\n")
    _err().flush()


def info(message: str) -> None:
    """Normal output of a command (stdout): what it did."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def flush() -> None:
    sys.stdout.flush()


def record(entry: str) -> None:
    """One NUL-terminated entry of `-z` output (stdout), bytes as they are in the path."""
    sys.stdout.buffer.write(entry.encode("utf-8", "surrogateescape") + b"\0")


#: The `schema` number of every `--json` document (docs/json-output.md): raised only when a
#: field changes meaning or goes away; new fields may appear at any time.
JSON_SCHEMA = 1


def json_document(command: str, body: dict[str, object]) -> None:
    """`--json` output: exactly one JSON document on stdout (warnings stay on stderr).

    ASCII-only: a path's non-UTF-8 bytes travel as the lone surrogates Python's
    surrogateescape gives them, which every JSON parser accepts as escapes."""
    import json

    document = {"schema": JSON_SCHEMA, "command": command, **body}
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


def note(message: str) -> None:
    """Progress-ish remarks for the user (stderr), so stdout stays parseable."""
    _err().write(message + "\n")
    _err().flush()


def phase(command: str, message: str) -> None:
    """`command: message...` on stderr as a step whose time grows with the history or the
    remote starts (prune, gc), so a long run says what it is doing; nothing when
    GIT_MLX_NO_PROGRESS is set."""
    if progress_wanted():
        note(f"{command}: {message}...")


def progress_wanted() -> bool:
    """False when GIT_MLX_NO_PROGRESS is set (to anything but 0/false): no bar, no lines."""
    return os.environ.get("GIT_MLX_NO_PROGRESS", "").strip().lower() in ("", "0", "false", "no", "off")


def _progress_delay() -> float:
    """GIT_MLX_PROGRESS_DELAY seconds (default 2, as git's own delayed progress) pass
    before anything is shown, so quick commands print nothing."""
    try:
        return max(0.0, float(os.environ.get("GIT_MLX_PROGRESS_DELAY", "2")))
    except ValueError:
        return 2.0


def _bytes(n: float) -> str:
    from gitmlx.format.sizes import human_size

    return human_size(int(n))


class PlainLines:
    """Progress for a log (stderr is not a terminal): a line when another tenth of the
    bytes is done or 10 s have passed since the last line, whichever comes first, and a
    last line at the end if any was printed. Each tenth is printed once, even when the
    total grows (a checkout's does) and the share goes down again: at most 10 lines for
    the tenths, and one per 10 s."""

    every = 10.0  # seconds

    def __init__(self, label: str) -> None:
        self.label = label
        self.started = time.monotonic()
        self.last_line = self.started
        self.tenths = 0
        self.lines = 0

    def update(self, files_done: int, files_total: int, bytes_done: int, bytes_total: int) -> None:
        now = time.monotonic()
        tenths = bytes_done * 10 // bytes_total if bytes_total else 0
        if tenths <= self.tenths and now - self.last_line < self.every:
            return
        self.tenths, self.last_line = max(tenths, self.tenths), now
        rate = bytes_done / max(now - self.started, 1e-3)
        share = bytes_done * 100 // bytes_total if bytes_total else 0
        note(
            f"{self.label}: {share}% ({files_done}/{files_total} files, {_bytes(bytes_done)} of "
            f"{_bytes(bytes_total)}, {_bytes(rate)}/s)"
        )
        self.lines += 1

    def close(self, files_done: int, files_total: int, bytes_done: int) -> None:
        if self.lines:
            seconds = time.monotonic() - self.started
            note(f"{self.label}: done, {files_done}/{files_total} files, {_bytes(bytes_done)} in {seconds:.1f} s")


class _BelowGitsLine:
    """stderr for a bar drawn one line below the cursor (tqdm's `position=1`), with the
    cursor put back at the start of the line above after each draw: git draws its own
    progress there with `\r` lines, starting wherever the cursor is."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> None:
        self._out.write(text + "\r" if text.endswith("\x1b[A") else text)

    def flush(self) -> None:
        self._out.flush()


class CheckoutDisplay:
    """The filter process's display of a checkout (`checkout.progress` drives it): in a
    terminal, one tqdm bar (bytes, rate, ETA, files) on the line below git's own progress;
    in a log, `PlainLines`. Nothing for the first GIT_MLX_PROGRESS_DELAY seconds, nor at
    all when `silenced()` (asked once, when something would first show) says so."""

    def __init__(self, label: str = "gitmlx checkout", silenced: Callable[[], bool] | None = None) -> None:
        self.label = label
        self._silenced = silenced
        self._tty = _err().isatty()
        self._delay = _progress_delay()
        self._first: float | None = None
        self._bar = None
        self._plain: PlainLines | None = None
        self._last = (0, 0, 0)
        self._off = False

    def update(self, files_done: int, files_total: int, bytes_done: int, bytes_total: int) -> None:
        self._last = (files_done, files_total, bytes_done)
        now = time.monotonic()
        if self._first is None:
            self._first = now
        if now - self._first < self._delay:
            return
        if self._silenced is not None:
            self._off, self._silenced = self._silenced(), None
        if self._off:
            return
        if not self._tty:
            if self._plain is None:
                self._plain = PlainLines(self.label)
                self._plain.started = self._first
            self._plain.update(files_done, files_total, bytes_done, bytes_total)
            return
        if self._bar is None:
            from tqdm import tqdm  # only a terminal ever pays for tqdm

            self._bar = tqdm(
                total=bytes_total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=self.label,
                file=_BelowGitsLine(_err()),
                position=1,
                leave=False,
                dynamic_ncols=True,
                postfix=f"{files_done}/{files_total} files",  # the first draw says it too
            )
        bar = self._bar
        bar.total = bytes_total
        bar.set_postfix_str(f"{files_done}/{files_total} files", refresh=False)
        bar.update(bytes_done - bar.n)

    def close(self) -> None:
        if self._bar is not None:
            # tqdm draws at most every 0.1 s: a checkout shorter than that would otherwise
            # never show where it ended before the bar is cleared.
            self._bar.refresh()
            self._bar.close()
            self._bar = None
        if self._plain is not None:
            files_done, files_total, bytes_done = self._last
            self._plain.close(files_done, files_total, bytes_done)
            self._plain = None
        self._first = None


class Progress:
    """Callbacks a transfer drives: `bytes_done(n)` and `file_done(_)`."""

    def __init__(self, total_bytes: int, total_files: int, label: str, quiet: bool = False) -> None:
        self.total_bytes, self.total_files, self.label, self.quiet = total_bytes, total_files, label, quiet
        self.bytes = 0
        self.files = 0
        self.started = time.monotonic()
        self._bar = None
        self._plain: PlainLines | None = None
        #: What `close` prints when not drawing a bar (set by the caller once it knows).
        self.close_summary: str | None = None
        show = not self.quiet and progress_wanted() and self.total_files
        if show and not _err().isatty():
            self._plain = PlainLines(self.label)
            self._delay = _progress_delay()
        elif show:
            from tqdm import tqdm  # only a terminal ever pays for tqdm

            self._bar = tqdm(
                total=self.total_bytes,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=self.label,
                file=_err(),
                leave=True,
            )

    def bytes_done(self, n: int) -> None:
        self.bytes += n
        if self._bar is not None:
            self._bar.update(n)
        self._plain_update()

    def file_done(self, _: object = None) -> None:
        self.files += 1
        if self._bar is not None:
            self._bar.set_postfix_str(f"{self.files}/{self.total_files} files", refresh=False)
        self._plain_update()

    def _plain_update(self) -> None:
        if self._plain is not None and time.monotonic() - self.started >= self._delay:
            self._plain.update(self.files, self.total_files, self.bytes, self.total_bytes)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._plain is not None:
            self._plain.close(self.files, self.total_files, self.bytes)
            self._plain = None
        summary, self.close_summary = self.close_summary, None
        if summary and not self.quiet:
            seconds = time.monotonic() - self.started
            note(f"{summary}, in {seconds:.1f} s")


@contextmanager
def progress(total_bytes: int, total_files: int, label: str, quiet: bool = False) -> Iterator[Progress]:
    bar = Progress(total_bytes, total_files, label, quiet)
    try:
        yield bar
    finally:
        bar.close()


def crash_log_dir() -> Path:
    """`$XDG_STATE_HOME/gitmlx/logs` (default `~/.local/state/gitmlx/logs`): the user's own,
    never a shared folder such as /tmp, where another user could plant a symlink or a
    folder of their own to read or redirect what gitmlx writes."""
    from pathlib import Path

    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "gitmlx" / "logs"


def _private_dir(path: Path) -> None:
    """Create `path` (and its parents) 0700, then check it is a real folder of this user
    that nobody else may write: OSError naming what is wrong otherwise."""
    import stat as stat_module

    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in (path, path.parent):  # .../gitmlx/logs and .../gitmlx are ours
        st = os.lstat(folder)
        if not stat_module.S_ISDIR(st.st_mode):
            raise OSError(f"'{folder}' is not a folder (a symlink?)")
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            raise OSError(f"'{folder}' belongs to another user or others may write to it")


def write_crash_log(exc: BaseException) -> str:
    """A bug's traceback, with versions, in a log file of the user's own; returns its path,
    or why none could be written (the bug is reported either way)."""
    import platform
    import traceback

    from gitmlx import __version__

    header = f"gitmlx {__version__}, Python {platform.python_version()}, argv {sys.argv!r}\n\n"
    text = header + "".join(traceback.format_exception(exc))
    directory = crash_log_dir()
    path = directory / f"crash-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    try:
        _private_dir(directory)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as why:
        return f"(no crash log: {why})"
    with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
        f.write(text)
    return str(path)
