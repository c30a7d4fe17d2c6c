"""`fsck`: re-hash every object of the local store (quarantining corrupt ones), and check
that a remote holds, intact, what a set of pointers needs.

Owns: what counts as damage and the fix for each kind (docs/local-store.md, "verify";
docs/storage-format.md, "Manifest"). A remote object is checked at three depths: its
manifest exists and validates; every pack it names is at least as long as the ranges it
uses (`Remote.size`); with `full`, it is rebuilt from the remote and its sha256 verified.
Must not: print, or change the remote. A full check rebuilds into a temporary store that
is removed after each object, never into the real one (streaming: bounded memory, and
disk for one object at a time).
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gitmlx import layout
from gitmlx.errors import IntegrityError, ObjectNotFound
from gitmlx.filters import quarantine
from gitmlx.manifest import Manifest
from gitmlx.pointer import Pointer
from gitmlx.remotes.base import Remote
from gitmlx.store import Store, StoredObject
from gitmlx.transfer.common import check_format, unique
from gitmlx.transfer.download import fetch_manifest, rebuild


@dataclass(frozen=True)
class Problem:
    """One object the remote cannot serve: what is wrong and how to fix it."""

    pointer: Pointer
    message: str
    hint: str


@dataclass
class LocalReport:
    checked: int = 0
    checked_bytes: int = 0
    #: Objects whose bytes no longer hash to their name; already moved to `bad/`.
    corrupt: list[StoredObject] = field(default_factory=list)


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
    for obj in store.iter_objects():
        try:
            intact = store.verify(obj.oid)
        except FileNotFoundError:
            continue  # pruned meanwhile
        report.checked += 1
        report.checked_bytes += obj.size
        if not intact:
            quarantine(store, obj.oid)
            report.corrupt.append(obj)
        if object_done:
            object_done(obj)
    return report


class PackSizes:
    """`Remote.size` of each pack, asked once per pack however many objects share it."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self._sizes: dict[str, int | None] = {}
        self._lock = threading.Lock()

    def get(self, pack_id: str) -> int | None:
        with self._lock:
            if pack_id in self._sizes:
                return self._sizes[pack_id]
        size = self.remote.size(layout.pack_key(pack_id))
        with self._lock:
            self._sizes[pack_id] = size
        return size


def _damaged_hint(manifest_key: str, store: Store, packs: bool) -> str:
    if not packs:
        return f"delete '{manifest_key}' on the remote, then run 'git mlx push --all' from a clone that has the file"
    # The chunk index would point a re-push at the damaged pack again: it must go too.
    return (
        f"from a clone that has the file, delete '{manifest_key}' on the remote and "
        f"'{store.root / 'index.sqlite'}', then run 'git mlx push --all'"
    )


def check_manifest_and_packs(
    store: Store, remote: Remote, pointer: Pointer, sizes: PackSizes
) -> tuple[Manifest | None, Problem | None]:
    """The object's manifest (None if unusable) and what is wrong, if anything."""
    key = layout.manifest_key(pointer.oid)
    try:
        manifest, _ = fetch_manifest(remote, pointer)
    except ObjectNotFound:
        if store.has(pointer.oid):
            hint = "upload it from this clone: run 'git mlx push --all'"
        else:
            hint = "run 'git mlx push --all' in a clone that has the file"
        return None, Problem(pointer, f"not on remote '{remote.display_url}' (no manifest)", hint)
    except IntegrityError as exc:
        return None, Problem(pointer, exc.message, _damaged_hint(key, store, packs=False))
    needed: dict[str, int] = {}
    for chunk in manifest.chunks:
        needed[chunk.pack] = max(needed.get(chunk.pack, 0), chunk.offset + chunk.stored)
    for pack_id, end in needed.items():
        size = sizes.get(pack_id)
        if size is None or size < end:
            state = "missing" if size is None else f"truncated ({size} bytes, its chunks need {end})"
            return manifest, Problem(
                pointer,
                f"pack {pack_id[:10]} on remote '{remote.display_url}' is {state}",
                _damaged_hint(key, store, packs=True),
            )
    return manifest, None


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
        key = layout.manifest_key(manifest.oid)
        return Problem(
            manifest.pointer,
            f"rebuilt from remote '{remote.display_url}', it is damaged: {exc.message}",
            _damaged_hint(key, store, packs=True),
        )
    finally:
        shutil.rmtree(scratch.root, ignore_errors=True)
    return None
