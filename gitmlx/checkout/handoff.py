"""The hand-off between a filter process and whoever finishes its work: small files in
the per-worktree git dir that the filter writes and the post-checkout / post-merge hooks
(and the filter process itself, on exit) read.

Owns: the names and formats of those files, and reading them safely while several
processes run:
- `mlx-unrestored`: paths left as pointers because their object could not be fetched;
  the hook reports them and fails the command.
- `mlx-deferred`: paths smudge answered with their pointer (above mlx.smudgelimit), whose
  content `place_deferred` puts in place after git is done.
- `mlx-deferred.<pid>`: a filter process's claim on the files it places itself (`Claim`),
  or the paths a hook is placing; a process that dies leaves it for the next to take over.
- `mlx-deferred-verified`: vouchers, "<oid> <inode> <size> <ctime_ns> <boot id>", for the
  deferred objects the filter hashed while downloading them.
Each list is NUL-separated and written by single O_APPEND writes.
Must not: print (placing reports through the callback it is given) or import the
placement code before a list holds something to place: the hooks run after every
checkout and must stay instant.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gitmlx.errors import MlxError
from gitmlx.osutil import portable

#: Paths left as pointers by a failed fetch during smudge.
UNRESTORED_FILE = "mlx-unrestored"
#: Paths above mlx.smudgelimit, for the post-checkout hook (or the filter's exit).
DEFERRED_FILE = "mlx-deferred"
#: Vouchers for deferred objects the filter hashed while downloading them.
VERIFIED_FILE = "mlx-deferred-verified"


def _claim_path(git_dir: Path, name: str, pid: int) -> Path:
    return git_dir / f"{name}.{pid}"


def record_path(git_dir: Path, name: str, path: str) -> None:
    """Append `path` to a list file (one short O_APPEND write: safe across processes)."""
    fd = os.open(git_dir / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, path.encode("utf-8", "surrogateescape") + b"\0")
    finally:
        os.close(fd)


def vouch(git_dir: Path, oid: str, store_file: Path) -> None:
    """Vouch for an object this process hashed while downloading it, so that placing its
    deferred file needs no second hash.

    The voucher names the store file's identity (inode, size, ctime): the placing
    process trusts the hash done here only while the object is that same, untouched
    file, and copies it with the kernel instead of reading and hashing it again.
    """
    identity = _store_file_identity(store_file)
    if identity is not None:
        record_path(git_dir, VERIFIED_FILE, f"{oid} {identity}")


def _store_file_identity(path: Path) -> str | None:
    """Inode, size, ctime and boot of a store file: what a voucher for it names.

    The boot id matters because downloaded objects are not synced to disk (a remote holds
    them): after a power loss the same inode may hold other bytes. Without a boot id
    (not Linux) nothing is vouched for.
    """
    if portable.enabled():
        return None  # as with no procfs
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_ino} {st.st_size} {st.st_ctime_ns} {boot}"


def take_vouched(git_dir: Path, store_path: Callable[[str], Path]) -> set[str]:
    """The oids vouched for (VERIFIED_FILE) whose store file is still exactly that file."""
    vouched = set()
    for record in take_paths(git_dir, VERIFIED_FILE):
        oid, _, identity = record.partition(" ")
        try:
            now = _store_file_identity(store_path(oid))
        except MlxError:  # not an oid
            continue
        if now is not None and identity == now:
            vouched.add(oid)
    return vouched


@contextmanager
def claimed_paths(git_dir: Path, name: str) -> Iterator[list[str]]:
    """The recorded paths, with those a killed process had claimed; the claims go only
    when the block ends normally, so a process killed inside it leaves them to the next.

    Clearing the record first lost it when a hook was killed while placing files: as git
    had already written its index, no later checkout smudged (and so recorded) the rest
    again, and they stayed pointers after a rerun.
    """
    prefix = f"{name}."
    own = _claim_path(git_dir, name, os.getpid())
    claims = []
    try:
        os.replace(git_dir / name, own)
        claims.append(own)
    except FileNotFoundError:
        pass
    for entry in os.listdir(git_dir):
        pid = entry[len(prefix) :]
        if entry.startswith(prefix) and pid.isdigit() and int(pid) != os.getpid():
            from gitmlx.checkout.objectfile import process_alive  # only when a claim is left over

            if not process_alive(int(pid)):
                claims.append(git_dir / entry)
    data = b""
    for claim in claims:
        try:
            data += claim.read_bytes() + b"\0"
        except FileNotFoundError:
            pass  # another process took it over meanwhile
    yield sorted({p.decode("utf-8", "surrogateescape") for p in data.split(b"\0") if p})
    for claim in claims:
        claim.unlink(missing_ok=True)


def take_paths(git_dir: Path, name: str) -> list[str]:
    """The recorded paths (and those a killed process had claimed), clearing the record."""
    with claimed_paths(git_dir, name) as paths:
        return paths


class Claim:
    """This process's claim on the files it places itself, `mlx-deferred.<pid>`.

    Each path goes in before git writes its pointer: if this process dies before the
    content is in place, the next post-checkout / post-merge hook or filter process takes
    the claim over and places the file (`claimed_paths`); `git mlx checkout` places every
    pointer file anyway.
    """

    def __init__(self, git_dir: Path) -> None:
        self._path = _claim_path(git_dir, DEFERRED_FILE, os.getpid())
        self._fd: int | None = None

    def add(self, path: str) -> None:
        if self._fd is None:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, path.encode("utf-8", "surrogateescape") + b"\0")

    def drop(self) -> None:
        """Every claimed file is placed or reported: nothing is left for another process."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            os.unlink(self._path)


def place_deferred(git_dir: Path, error: Callable[[str, str | None], None]) -> int:
    """Write the content of files smudge left as pointers because of mlx.smudgelimit;
    the exit status for the caller (1 when a file could not be placed, each told to
    `error`).

    Run by the post-checkout / post-merge hooks and, for commands that run no hook
    (reset --hard, stash, cherry-pick...), by the filter process itself when git closes
    it on exit, after git has written its index. Paths recorded by a smudge into a
    temporary file (a diff) are skipped: only files that hold their pointer in the work
    tree are placed.
    """
    with claimed_paths(git_dir, DEFERRED_FILE) as deferred:
        if not deferred:
            return 0
        from gitmlx.checkout import worktree
        from gitmlx.context import RepoContext
        from gitmlx.git import scan

        ctx = RepoContext()
        vouched = take_vouched(git_dir, ctx.store.path)
        try:
            files = scan.pointers_in_index(ctx.top, deferred, tracked_only=False)  # paths git ran smudge on
            result = worktree.check_out(ctx, files, verified=vouched)
        except MlxError as exc:
            for path in deferred:  # kept for the next hook or filter process
                record_path(git_dir, DEFERRED_FILE, path)
            error(exc.message, exc.hint)
            return 1
        for message in result.failure_messages():
            error(message, None)
    if result.missing or result.failed:
        for tracked in result.missing:
            error(f"'{tracked.path}' is not in the local store", "run 'git mlx pull'")
        return 1
    return 0
