"""`prune`: delete local objects that no recent ref needs and that the remote holds.

Owns: the deletion rule (docs/local-store.md, "Prune"): an object goes only when it is
outside the keep-list (`reach.keep_list`) AND the remote has its manifest (with
`verify_remote`, a valid manifest and every pack it names, long enough). Its rows in the
chunk index go first, so no fetch takes chunks from an object about to disappear.
Must not: print, or touch the remote (it is only asked).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from gitmlx.format import layout
from gitmlx.format.pointer import Pointer
from gitmlx.maintenance.fsck import PackSizes, check_manifest_and_packs
from gitmlx.remotes.base import Remote
from gitmlx.store.objects import Store, StoredObject
from gitmlx.transfer import shards
from gitmlx.transfer.common import check_format, index_for


@dataclass
class PruneReport:
    dry_run: bool
    total: list[StoredObject] = field(default_factory=list)
    #: Deleted (or, in a dry run, would be).
    pruned: list[StoredObject] = field(default_factory=list)
    #: Outside the keep-list, but the remote does not hold them (or not intact): kept.
    not_on_remote: list[StoredObject] = field(default_factory=list)

    @property
    def pruned_bytes(self) -> int:
        return sum(o.size for o in self.pruned)

    @property
    def kept(self) -> int:
        return len(self.total) - len(self.pruned)

    @property
    def kept_bytes(self) -> int:
        return sum(o.size for o in self.total) - self.pruned_bytes


def prune(
    store: Store,
    remote: Remote,
    keep: Iterable[str],
    dry_run: bool = False,
    verify_remote: bool = False,
    concurrency: int = 8,
) -> PruneReport:
    keep = set(keep)
    report = PruneReport(dry_run, list(store.iter_objects()))
    candidates = [o for o in report.total if o.oid not in keep]
    if not candidates:
        return report
    version = check_format(remote, create=False, tmp_dir=store.tmp_dir)
    if version is None:
        report.not_on_remote = candidates  # nothing was ever pushed there
        return report
    sizes = PackSizes(remote)
    held: dict[str, bool] = {}
    lock = threading.Lock()

    def ask(obj: StoredObject) -> None:
        if verify_remote:
            _, problem = check_manifest_and_packs(store, remote, Pointer(obj.oid, obj.size), sizes)
            ok = problem is None
        else:
            # Format 2: a shard entry (its table was read once), else a format-1 key.
            in_shard = version == 2 and bool(shards.directory(remote).places(obj.oid))
            ok = in_shard or remote.exists(layout.manifest_key(obj.oid))
        with lock:
            held[obj.oid] = ok

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        list(pool.map(ask, candidates))
    index = None if dry_run else index_for(store)
    try:
        for obj in candidates:
            if not held[obj.oid]:
                report.not_on_remote.append(obj)
                continue
            if index is not None:
                index.forget_local_object(obj.oid)
            report.pruned.append(obj)
        if not dry_run:
            # Another prune may get there first: discarding is idempotent.
            store.discard(obj.oid for obj in report.pruned)
    finally:
        if index is not None:
            index.close()
    return report
