"""`fsck`: re-hash every object of the local store (quarantining corrupt ones), check
that a remote holds, intact, what a set of pointers needs, and repair it from this store.

Owns: what counts as damage and the fix for each kind (docs/local-store.md, "verify";
docs/storage-format.md, "Manifest"). A remote object is checked at three depths: its
manifest exists and validates; every pack it names is at least as long as the ranges it
uses (`Remote.size`; transfer.remote_check, which push applies too, so a re-push fixes
these); with `full`, it is rebuilt from the remote and its sha256 verified (bytes changed
in place, which only `repair_remote` fixes).
Must not: print. Only `repair_remote` changes the remote, through the upload's write
order. A full check rebuilds into a temporary store that is removed after each object,
never into the real one (streaming: bounded memory, and disk for one object at a time).
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.errors import IntegrityError, ObjectNotFound
from gitmlx.format.manifest import Manifest
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import ProgressCallback, Remote
from gitmlx.store.objects import Store, StoredObject
from gitmlx.transfer.common import FileDone, TransferResult, check_format, unique
from gitmlx.transfer.rebuild import rebuild
from gitmlx.transfer.remote_check import MISSING, PackSizes, check_copy
from gitmlx.transfer.upload import upload

__all__ = ["PackSizes", "Problem", "check_manifest_and_packs", "check_remote", "repair_remote", "verify_local"]

#: The command that repairs what only a full check finds (named in hints).
REPAIR = "git mlx fsck --remote --full --repair"


@dataclass(frozen=True)
class Problem:
    """One object the remote cannot serve: what is wrong and how to fix it."""

    pointer: Pointer
    message: str
    hint: str
    #: Packs not to take this object's chunks from again: missing or short ones, or every
    #: pack of a manifest whose rebuild failed (which chunk is wrong is not known).
    packs: frozenset[str] = frozenset()


@dataclass
class LocalReport:
    checked: int = 0
    checked_bytes: int = 0
    #: Objects whose bytes no longer hash to their name; already moved to `bad/`.
    corrupt: list[StoredObject] = field(default_factory=list)
    #: Store packs whose index was damaged: intact objects kept, the file moved here.
    damaged_packs: list[Path] = field(default_factory=list)


@dataclass
class RemoteReport:
    checked: int = 0
    problems: dict[str, Problem] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_local(store: Store, object_done: Callable[[StoredObject], None] | None = None) -> LocalReport:
    """Re-hash every object; move each corrupt one to `<store>/bad/`."""
    report = LocalReport()
    for pack in store.iter_packs():
        if not pack.index_intact():
            report.damaged_packs.append(store.salvage_pack(pack))
    for obj in store.iter_objects():
        try:
            intact = store.verify(obj.oid)
        except FileNotFoundError:
            continue  # pruned meanwhile
        report.checked += 1
        report.checked_bytes += obj.size
        if not intact:
            store.quarantine(obj.oid)
            report.corrupt.append(obj)
        if object_done:
            object_done(obj)
    return report


def _upload_hint(store: Store, pointer: Pointer) -> str:
    if store.has(pointer.oid):
        return "upload it again from this clone: run 'git mlx push --all'"
    return "run 'git mlx push --all' in a clone that has the file"


def check_manifest_and_packs(
    store: Store, remote: Remote, pointer: Pointer, sizes: PackSizes
) -> tuple[Manifest | None, Problem | None]:
    """The object's manifest (None if unusable) and what is wrong, if anything."""
    copy = check_copy(remote, pointer, sizes)
    if copy.intact:
        return copy.manifest, None
    hint = _upload_hint(store, pointer)
    if copy.state == MISSING:
        hint = hint.replace("upload it again", "upload it")
    return copy.manifest, Problem(pointer, copy.problem or copy.state, hint, copy.bad_packs)


def check_remote(
    store: Store,
    remote: Remote,
    pointers: Iterable[Pointer],
    full: bool = False,
    concurrency: int = 8,
    object_done: Callable[[Pointer], None] | None = None,
) -> RemoteReport:
    """Check that `remote` can serve every object in `pointers`."""
    todo = unique(pointers)
    report = RemoteReport(checked=len(todo))
    if not todo:
        return report
    if not check_format(remote, create=False, tmp_dir=store.tmp_dir):
        for p in todo:
            report.problems[p.oid] = Problem(
                p, f"not on remote '{remote.display_url}' (nothing was ever pushed there)", "run 'git mlx push --all'"
            )
        return report
    sizes = PackSizes(remote)
    manifests: dict[str, Manifest] = {}
    lock = threading.Lock()

    def one(pointer: Pointer) -> None:
        manifest, problem = check_manifest_and_packs(store, remote, pointer, sizes)
        with lock:
            if problem is not None:
                report.problems[pointer.oid] = problem
            elif manifest is not None:
                manifests[pointer.oid] = manifest
        if object_done and not full:
            object_done(pointer)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        list(pool.map(one, todo))
    if full:
        # One object at a time: a rebuild needs as much temporary disk as the object.
        for pointer in todo:
            if pointer.oid in manifests:
                problem = _rebuild_and_verify(store, remote, manifests[pointer.oid])
                if problem is not None:
                    report.problems[pointer.oid] = problem
            if object_done:
                object_done(pointer)
    return report


def _rebuild_and_verify(store: Store, remote: Remote, manifest: Manifest) -> Problem | None:
    scratch = Store(store.tmp_dir / f"fsck-{os.getpid()}-{secrets.token_hex(8)}")
    try:
        # The same rebuild `fetch` runs, without local chunks: only the remote's bytes count.
        rebuild(scratch, remote, manifest, {}, None)
    except (IntegrityError, ObjectNotFound) as exc:
        where = "from this clone" if store.has(manifest.oid) else "from a clone that has the file"
        return Problem(
            manifest.pointer,
            f"rebuilt from remote '{remote.display_url}', it is damaged: {exc.message}",
            f"repair it {where}: run '{REPAIR}'",
            frozenset(manifest.packs()),
        )
    finally:
        scratch.abandon()
        shutil.rmtree(scratch.root, ignore_errors=True)
    return None


def repair_remote(
    store: Store,
    remote: Remote,
    problems: Iterable[Problem],
    concurrency: int = 8,
    progress: ProgressCallback | None = None,
    file_done: FileDone | None = None,
) -> TransferResult:
    """Upload again, from this store, every object `problems` names, and rewrite its
    manifest; chunks are not taken from the packs the problems name (they are forgotten
    by the chunk index too), so the new manifest names only packs of this upload or
    intact ones. Objects this store lacks fail, named. The damaged packs stay on the
    remote (other manifests may use their intact ranges); `gc --remote` deletes them
    once nothing names them."""
    problems = list(problems)
    return upload(
        store,
        remote,
        [p.pointer for p in problems],
        concurrency,
        progress,
        file_done,
        replace={p.pointer.oid for p in problems},
        damaged_packs=frozenset().union(*(p.packs for p in problems)),
    )
