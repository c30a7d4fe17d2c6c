"""`git mlx filter-process`: the long-running clean/smudge filter git starts once per
command (filter.mlx.process).

Owns: wiring the protocol loop to a FilterSession's clean and smudge, and keeping
fd 1 for the protocol only: everything else, including stray prints, goes to stderr.
"""

from __future__ import annotations

import os
import sys

from gitmlx import trace, ui
from gitmlx.checkout.session import FilterSession
from gitmlx.errors import MlxError
from gitmlx.git import filter_protocol
from gitmlx.git.pktline import ContentReader
from gitmlx.osutil import portable


def report_failure(command: str, path: str, exc: BaseException) -> None:
    """One stderr line per failed file; a bug's traceback goes to a log file instead."""
    if isinstance(exc, MlxError):
        ui.error_line(f"cannot {command} '{path}': {exc.message}", exc.hint)
        return
    log = ui.write_crash_log(exc)
    ui.error_line(f"cannot {command} '{path}': internal error ({type(exc).__name__})", f"details in '{log}'")


def _parent_is_quiet() -> bool:
    from gitmlx.checkout import gitparent  # only once a checkout would show something

    return gitparent.parent_is_quiet()


def _widen_pipes() -> None:
    """Ask for 1 MiB pipe buffers (Linux F_SETPIPE_SZ) on both protocol pipes.

    With the default 64 KiB, every MiB of content costs git and the filter 16 round
    trips of wake-ups.
    """
    if portable.enabled():
        return
    try:
        import fcntl

        for fd in (0, 1):
            fcntl.fcntl(fd, 1031, 1024 * 1024)  # F_SETPIPE_SZ
    except (ImportError, OSError):
        pass  # not Linux, not a pipe, or above /proc/sys/fs/pipe-max-size: keep the default


def run(skip_smudge: bool = False) -> int:
    _widen_pipes()
    protocol_out = os.fdopen(os.dup(1), "wb", buffering=1024 * 1024)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    protocol_in = os.fdopen(os.dup(0), "rb", buffering=1024 * 1024)
    # No display when GIT_MLX_NO_PROGRESS is set: then nothing counts either. git does not
    # pass its --quiet on to the filter: its command line says it (read only when needed).
    display = ui.CheckoutDisplay(silenced=_parent_is_quiet) if ui.progress_wanted() else None
    session = FilterSession(skip_smudge, ui.warn, ui.error_line, display)
    hooks_checked = False

    def ensure_hooks() -> None:
        """Install missing hooks (as Git LFS does from its filter): a clone gets them from
        its checkout, before git runs post-checkout; a repository only ever cleaned gets
        them when git closes the filter, before any push. Not before the first answer:
        finding the hooks folder costs a git process every `git add` would wait for."""
        nonlocal hooks_checked
        if hooks_checked or session.ctx.paths.work_tree is None:
            return
        hooks_checked = True
        try:
            # Without core.hooksPath, git's hooks live in the common dir (githooks(5)).
            custom = session.ctx.config.git("core.hookspath")
            known = None if custom else session.ctx.paths.common_dir / "hooks"
            from gitmlx.git import hooks  # only once a checkout or the filter's end needs it

            hooks.install_hooks(session.ctx.top, only_missing=True, directory=known)
        except (OSError, MlxError):
            pass  # a read-only hooks dir must not break checkout

    def clean(_: str, request: dict[str, str], content: ContentReader) -> filter_protocol.Body:
        if trace.ON:
            trace.log("filter", "clean %r", request.get("pathname", ""))
        pointer = session.clean(content, request.get("pathname", ""))
        return lambda out: out.write(pointer)

    def smudge(_: str, request: dict[str, str], content: ContentReader) -> filter_protocol.Body:
        ensure_hooks()
        body = session.smudge(content, request.get("pathname", ""), request.get("can-delay") == "1")
        if trace.ON:
            answer = "delayed" if body is filter_protocol.DELAYED else "answered"
            trace.log(
                "filter", "smudge %r (can-delay=%s): %s", request.get("pathname", ""), request.get("can-delay"), answer
            )
        return body

    try:
        try:
            filter_protocol.serve(
                protocol_in,
                protocol_out,
                {"clean": clean, "smudge": smudge},
                report_failure,
                session.list_available,
                session.idle,
            )
            protocol_out.flush()
            ensure_hooks()
        except KeyboardInterrupt:
            raise
        except BaseException:
            session.close()
            raise
        session.close()
    except KeyboardInterrupt:
        # Ctrl-C reaches git and this process alike. Finishing the downloads and
        # placements now would keep a process the user meant to stop running on in the
        # background; stop as a kill would (nothing partial is under a final name, and
        # the claim file lets the next hook or filter place what is left).
        os._exit(130)
    if session.deferred:
        # git closes the filter when it exits, after writing its index, and waits for it
        # (subprocess.c, subprocess_exit_handler): the moment to place what smudge
        # deferred, for the commands that run no post-checkout hook (reset, stash...).
        from gitmlx.checkout.handoff import place_deferred

        place_deferred(session.ctx.paths.git_dir, ui.error)
    _exit_without_teardown()
    return 0


def _exit_without_teardown() -> None:
    """Exit now, skipping the interpreter's teardown, which frees every module's objects one
    by one: git waits for the filter to exit at the end of every `git add`, commit and
    checkout. Only when nothing can need the teardown: the exit handlers run first, and
    with another thread alive or tracing on (its log) the ordinary exit is taken."""
    import atexit

    threading = sys.modules.get("threading")  # not loaded: no other thread was started
    if trace.ON or (threading is not None and threading.active_count() > 1):
        return
    atexit._run_exitfuncs()  # CPython's own exit runs the same: the store's sync, for one
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
