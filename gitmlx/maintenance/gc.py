"""`gc --remote`: delete remote manifests no ref reaches and packs no live manifest names,
in two phases a grace period apart, so that a push in flight is never broken.

Owns: the collection rule of docs/storage-format.md, "Garbage collection". Phase 2 runs
first: it deletes what pending notes older than the grace period list AND is still
unreachable / unreferenced now, under the `deleting` / `keep` handshake with pushers.
Phase 1 then lists what is unreachable now in a new pending note. Without `confirm`
nothing is written or deleted: the report says what a confirmed run would do.
Must not: run git (the caller passes the reachable oids) or print.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.errors import IntegrityError, ObjectNotFound
from gitmlx.format import layout, shard
from gitmlx.format.manifest import decode
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import Remote
from gitmlx.transfer import gc_marks
from gitmlx.transfer.common import check_format
from gitmlx.transfer.rebuild import MANIFEST_LIMIT

DEFAULT_GRACE_DAYS = 7.0
_SIZE_FIELD = struct.Struct("<Q")  # the object size in a manifest header, at offset 40


@dataclass
class GcReport:
    confirm: bool
    grace_seconds: float
    #: Unfinished multipart uploads older than the grace period, aborted.
    aborted_uploads: int = 0
    manifests: dict[str, int] = field(default_factory=dict)  # on the remote: oid -> bytes
    packs: dict[str, int] = field(default_factory=dict)  # pack id -> bytes
    shards: dict[str, int] = field(default_factory=dict)  # shard id -> bytes (format 2)
    #: Phase 2: deleted now (in a dry run: what a confirmed run would delete now).
    deleted_manifests: dict[str, int] = field(default_factory=dict)
    deleted_packs: dict[str, int] = field(default_factory=dict)
    #: Phase 1: unreachable / unreferenced now, listed in `pending_note` (dry run: would be).
    marked_manifests: dict[str, int] = field(default_factory=dict)
    marked_packs: dict[str, int] = field(default_factory=dict)
    pending_note: str | None = None
    #: Why phase 2 deleted nothing, or stopped early (None: it ran to the end).
    stopped: str | None = None
    unreadable_notes: list[str] = field(default_factory=list)
    #: Manifests whose pack table is unreadable: while one lives, no pack is deleted or marked.
    damaged_manifests: list[str] = field(default_factory=list)
    now: int = 0

    @property
    def stored_bytes(self) -> int:
        return sum(self.manifests.values()) + sum(self.packs.values()) + sum(self.shards.values())

    @property
    def freed_bytes(self) -> int:
        return sum(self.deleted_manifests.values()) + sum(self.deleted_packs.values())

    @property
    def marked_bytes(self) -> int:
        return sum(self.marked_manifests.values()) + sum(self.marked_packs.values())


class ManifestPacks:
    """Which packs each manifest names, read from the remote on demand (in parallel)."""

    def __init__(self, remote: Remote, concurrency: int) -> None:
        self.remote, self.concurrency = remote, concurrency
        self._packs: dict[str, frozenset[str] | None] = {}
        self._lock = threading.Lock()

    def _read(self, oid: str) -> None:
        key = layout.manifest_key(oid)
        packs: frozenset[str] | None
        try:
            data = self.remote.read_range(key, 0, MANIFEST_LIMIT)
        except ObjectNotFound:
            packs = frozenset()  # deleted meanwhile: it protects nothing
        else:
            try:
                if len(data) < 48:
                    raise IntegrityError("too short")
                packs = frozenset(decode(data, Pointer(oid, _SIZE_FIELD.unpack_from(data, 40)[0])).packs())
            except (IntegrityError, ValueError):
                packs = None  # its pack table cannot be trusted
        with self._lock:
            self._packs[oid] = packs

    def packs_of(self, oids: Iterable[str]) -> set[str] | None:
        """Every pack these manifests name; None when one of them is damaged (then no pack
        can be shown to be unreferenced)."""
        oids = list(oids)
        todo = [o for o in oids if o not in self._packs]
        if todo:
            with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
                list(pool.map(self._read, todo))
        found: set[str] = set()
        for oid in oids:
            packs = self._packs[oid]
            if packs is None:
                return None
            found |= packs
        return found

    @property
    def damaged(self) -> list[str]:
        return sorted(oid for oid, packs in self._packs.items() if packs is None)


def _union(notes: Iterable[gc_marks.Note]) -> tuple[set[str], set[str]]:
    manifests: set[str] = set()
    packs: set[str] = set()
    for note in notes:
        manifests |= note.manifests
        packs |= note.packs
    return manifests, packs


class _Collector:
    def __init__(self, remote: Remote, reachable: set[str], report: GcReport, tmp_dir: Path, concurrency: int) -> None:
        self.remote, self.reachable, self.report, self.tmp_dir = remote, reachable, report, tmp_dir
        self.tables = ManifestPacks(remote, concurrency)
        self.due: list[gc_marks.Note] = []
        self.keep_keys: set[str] = set()
        self.protected: tuple[set[str], set[str]] = (set(), set())
        #: Packs the manifests in shards name (every entry counts as live: shards are not
        #: collected yet); None when a shard or one of its manifests is damaged.
        self.shard_packs: set[str] | None = set()

    def read_keeps(self) -> bool:
        """Re-read `keep` notes younger than the grace period; False if one is unreadable."""
        marks = gc_marks.read_marks(self.remote, kinds=("keep",))
        if marks.unreadable:
            self.report.unreadable_notes += [k for k in marks.unreadable if k not in self.report.unreadable_notes]
            return False
        t = gc_marks.now()
        young = [n for n in marks.of("keep") if t - n.created < self.report.grace_seconds]
        self.keep_keys = {n.key for n in young}
        self.protected = _union(young)
        return True

    def plan(self) -> tuple[set[str], set[str]]:
        """What phase 2 may delete now: listed in a due note, and still unreachable (manifests)
        or named by no surviving manifest (packs); never what a young `keep` note names."""
        listed_m, listed_p = _union(self.due)
        gone_m, gone_p = self.report.deleted_manifests, self.report.deleted_packs
        present_m = self.report.manifests.keys() - gone_m.keys()
        cand_m = (listed_m & present_m) - self.reachable - self.protected[0]
        cand_p = (listed_p & (self.report.packs.keys() - gone_p.keys())) - self.protected[1]
        if cand_p:
            named = self.tables.packs_of(present_m - cand_m)
            cand_p = set() if named is None or self.shard_packs is None else cand_p - named - self.shard_packs
        return cand_m, cand_p

    def delete(self) -> None:
        """Phase 2 in a confirmed run: the `deleting` / `keep` handshake, then deletions."""
        notes = [gc_marks.write_note(self.remote, "deleting", self.tmp_dir)]
        try:
            # Only now read `keep` notes: a pusher who wrote one after this read sees our
            # `deleting` note and waits for us to finish before it writes anything.
            if not self.read_keeps():
                self.report.stopped = "a keep note is unreadable"
                return
            cand_m, cand_p = self.plan()
            renewed = time.monotonic()
            # Manifests first: a manifest never names a pack that is gone.
            for kind, item in [("m", o) for o in sorted(cand_m)] + [("p", p) for p in sorted(cand_p)]:
                if time.monotonic() - renewed > gc_marks.DELETING_RENEW:
                    notes.append(gc_marks.write_note(self.remote, "deleting", self.tmp_dir))
                    self.remote.delete(notes.pop(0))
                    before = self.keep_keys
                    if not self.read_keeps():
                        self.report.stopped = "a keep note is unreadable"
                        return
                    if self.keep_keys - before:
                        cand_m, cand_p = self.plan()
                    renewed = time.monotonic()
                if kind == "m" and item in cand_m:
                    self.remote.delete(layout.manifest_key(item))
                    self.report.deleted_manifests[item] = self.report.manifests[item]
                elif kind == "p" and item in cand_p:
                    self.remote.delete(layout.pack_key(item))
                    self.report.deleted_packs[item] = self.report.packs[item]
        finally:
            for key in notes:
                self.remote.delete(key)


def collect_garbage(
    remote: Remote,
    reachable: Iterable[str],
    tmp_dir: Path,
    grace_seconds: float = DEFAULT_GRACE_DAYS * 86400,
    confirm: bool = False,
    concurrency: int = 8,
) -> GcReport:
    """One gc run over `remote`; `reachable` are the oids any ref of its git remote reaches."""
    report = GcReport(confirm, grace_seconds, now=gc_marks.now())
    version = check_format(remote, create=False, tmp_dir=tmp_dir)
    if version is None:
        return report  # nothing was ever pushed there
    for entry in remote.list(layout.MANIFESTS_PREFIX):
        if (oid := layout.oid_from_manifest_key(entry.key)) is not None:
            report.manifests[oid] = entry.size
    for entry in remote.list(layout.PACKS_PREFIX):
        if (pack_id := layout.pack_id_from_key(entry.key)) is not None:
            report.packs[pack_id] = entry.size
    collector = _Collector(remote, set(reachable), report, tmp_dir, concurrency)
    if version == 2:
        collector.shard_packs = _shard_packs(remote, report)
    marks = gc_marks.read_marks(remote, kinds=("pending",))
    report.unreadable_notes = list(marks.unreadable)
    collector.due = [n for n in marks.of("pending") if report.now - n.created >= grace_seconds]

    # Phase 2: delete what was marked at least a grace period ago and is still garbage.
    if collector.due:
        if confirm:
            collector.delete()
        elif collector.read_keeps():
            cand_m, cand_p = collector.plan()
            report.deleted_manifests = {o: report.manifests[o] for o in cand_m}
            report.deleted_packs = {p: report.packs[p] for p in cand_p}
        else:
            report.stopped = "a keep note is unreadable"
        if confirm and report.stopped is None:
            for note in collector.due:
                remote.delete(note.key)
    if confirm and report.stopped is None:
        _remove_expired_notes(remote, report)
        # A killed push's multipart uploads, billed until aborted; the grace period leaves
        # alone any push that could still be running.
        report.aborted_uploads = remote.abort_stale_uploads(report.now - grace_seconds)

    # Phase 1: mark what is garbage now (after this run's deletions).
    live = report.manifests.keys() - report.deleted_manifests.keys()
    named = collector.tables.packs_of(live & collector.reachable)
    if named is not None and collector.shard_packs is not None:
        named |= collector.shard_packs
    else:
        named = None
    report.marked_manifests = {o: report.manifests[o] for o in sorted(live - collector.reachable)}
    if named is not None:  # else a live manifest is damaged: mark no pack
        unreferenced = report.packs.keys() - report.deleted_packs.keys() - named
        report.marked_packs = {p: report.packs[p] for p in sorted(unreferenced)}
    report.damaged_manifests = collector.tables.damaged
    if confirm and (report.marked_manifests or report.marked_packs):
        report.pending_note = gc_marks.write_note(
            remote,
            "pending",
            tmp_dir,
            report.marked_manifests,
            report.marked_packs,
            created=report.now,
            extra={"bytes": report.marked_bytes},
        )
    return report


def _shard_packs(remote: Remote, report: GcReport) -> set[str] | None:
    """Every pack a manifest in a shard names (reading each shard whole); None when one
    is damaged (then no pack can be shown to be unreferenced)."""
    from gitmlx.transfer import shards  # only gc of a format 2 remote reads shards

    directory = shards.directory(remote)
    named: set[str] = set()
    for shard_id in directory.shard_ids():
        try:
            data = memoryview(directory.whole(shard_id))
            report.shards[shard_id] = len(data)
            for e in shard.decode(data):
                named.update(decode(data[e.offset : e.offset + e.length], Pointer(e.oid, e.size)).packs())
        except (ObjectNotFound, IntegrityError):
            return None  # damaged, or gone since the listing with its successor unlisted
    return named


def _remove_expired_notes(remote: Remote, report: GcReport) -> None:
    """`keep` notes past the grace period, and `deleting` notes of a gc that died or dated
    in the future (pushers ignore those anyway)."""
    for key, kind, created in gc_marks.list_notes(remote):
        age = report.now - created
        if (kind == "keep" and age >= report.grace_seconds) or (
            kind == "deleting" and not -gc_marks.FUTURE_SKEW <= age < gc_marks.DELETING_TIMEOUT
        ):
            remote.delete(key)
