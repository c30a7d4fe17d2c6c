"""Batches of small objects fetched by a process of its own, for the filter's downloads
from a directory remote.

Why: from a directory remote a download is work for the CPUs, not waiting. On a download
thread it took turns on the interpreter with the thread answering git, which then waited
for it at each of git's requests (docs/design.md, "Checkout performance"). A worker
process runs `transfer.batch.fetch_batch` on its own interpreter and names the store pack
its objects went into before it answers, so the filter finds them in the store like any
other.

The protocol, on the worker's stdin and stdout (text lines, UTF-8): the filter writes a
batch as `<oid> <size>` lines and an empty line; the worker answers `ok <oid> <size>` for
each object it stored and verified, then `end` (the size too: a pointer lying about its
size names the same oid as the true one, and must get its own failing fetch). An object
it does not answer for (a failure, or a worker that died) is not stored by it: the filter
fetches it itself, so failures are reported exactly as without a worker.

Owns: starting, feeding and stopping the worker, and the worker's loop (`run`).
Must not: decide which objects to fetch, or report failures (the caller does both).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from gitmlx import trace
from gitmlx.format.pointer import Pointer
from gitmlx.git.plumbing import GitProcess


class WorkerClient:
    """The filter's side: one worker, started on first use, fed one batch at a time."""

    #: The worker's git command: git starts the same git-mlx it started the filter as.
    ARGS = ("mlx", "fetch-worker")

    def __init__(self, top: Path | str) -> None:
        self._top = top
        self._process: GitProcess | None = None
        self._lock = threading.Lock()
        #: The worker could not start or died: every later batch is fetched in the filter.
        self._broken = False

    def fetch(self, group: Sequence[Pointer]) -> set[tuple[str, int]]:
        """The (oid, size) of each object of `group` the worker stored (verified, in a
        named pack); empty when there is no usable worker."""
        with self._lock:
            process = self._started()
            if process is None:
                return set()
            wanted = {(p.oid, p.size) for p in group}
            stored: set[tuple[str, int]] = set()
            try:
                answers = process.ask("".join(f"{p.oid} {p.size}\n" for p in group).encode() + b"\n")
                while (line := answers.readline()) not in (b"", b"end\n"):
                    fields = line.decode("ascii", "replace").split()
                    if len(fields) == 3 and fields[0] == "ok" and fields[2].isascii() and fields[2].isdigit():
                        key = (fields[1], int(fields[2]))
                        if key in wanted:
                            stored.add(key)
                if not line:
                    raise OSError("the download worker ended")
            except OSError:
                self._broken = True
                self._stop(process)
            return stored

    def _started(self) -> GitProcess | None:
        if self._process is None and not self._broken:
            try:
                self._process = GitProcess(self.ARGS, cwd=self._top)
            except OSError:
                self._broken = True
        return None if self._broken else self._process

    def close(self) -> None:
        """Let the worker finish (it exits when its input ends) and wait for it."""
        with self._lock:
            if self._process is not None:
                self._stop(self._process)
                self._process = None

    @staticmethod
    def _stop(process: GitProcess) -> None:
        try:
            process.close()
        except OSError:
            pass


def run() -> int:
    """The worker (`git-mlx fetch-worker`, started by `WorkerClient`): fetch each batch
    read from stdin into the store, name the pack, answer. Anything it cannot do it leaves
    unanswered, and the filter fetches those objects itself, reporting any failure."""
    import signal

    from gitmlx.context import RepoContext
    from gitmlx.transfer.batch import fetch_batch
    from gitmlx.transfer.common import index_for

    # Ctrl-C reaches the whole process group: the filter decides what it means, and the
    # worker ends when its input does (at most the batch in hand is finished first).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctx = RepoContext()
    remote = ctx.open_remote()
    index = index_for(ctx.store)
    out = sys.stdout
    group: list[Pointer] = []
    stored: list[Pointer] = []

    def landed(pointer: Pointer, failure: BaseException | None) -> None:
        if failure is None:
            stored.append(pointer)

    try:
        for line in sys.stdin:
            fields = line.split()
            if fields:
                group.append(Pointer(fields[0], int(fields[1])))
                continue
            fetch_batch(ctx.store, remote, index, group, landed)
            ctx.store.finish_pack()  # before answering: the filter finds them in the store
            index.flush()
            if trace.ON:
                trace.log("worker", "batch of %d objects: %d stored", len(group), len(stored))
            out.write("".join(f"ok {p.oid} {p.size}\n" for p in stored) + "end\n")
            out.flush()
            group, stored[:] = [], []
    finally:
        index.close()
    return 0
