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

from gitmlx.config import DEFAULT_GRACE_DAYS
from gitmlx.errors import IntegrityError, ObjectNotFound
from gitmlx.format import layout
from gitmlx.format.manifest import decode
from gitmlx.format.pointer import Pointer
from gitmlx.maintenance import gc_shards
from gitmlx.remotes.base import Remote
from gitmlx.transfer import gc_marks
from gitmlx.transfer.common import check_format
from gitmlx.transfer.rebuild import MANIFEST_LIMIT

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
    shard_entries: dict[str, int] = field(default_factory=dict)  # oid -> manifest bytes, in shards
    #: Phase 2: deleted now (in a dry run: what a confirmed run would delete now). Format 2:
    #: `deleted_manifests` also names the oids whose last shard entry went (0 bytes: the
    #: shard's bytes count in `deleted_shards`).
    deleted_manifests: dict[str, int] = field(default_factory=dict)
    deleted_packs: dict[str, int] = field(default_factory=dict)
    deleted_shards: dict[str, int] = field(default_factory=dict)
    #: Phase 1: unreachable / unreferenced now, listed in `pending_note` (dry run: would be).
    marked_manifests: dict[str, int] = field(default_factory=dict)
    marked_packs: dict[str, int] = field(default_factory=dict)
    marked_shards: dict[str, int] = field(default_factory=dict)
    #: Format 2: shards written by this run (compacted replacements, rescued entries).
    written_shards: list[str] = field(default_factory=list)
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
        return (
            sum(self.deleted_manifests.values()) + sum(self.deleted_packs.values()) + sum(self.deleted_shards.values())
        )

    @property
    def marked_bytes(self) -> int:
        return sum(self.marked_manifests.values()) + sum(self.marked_packs.values()) + sum(self.marked_shards.values())


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


def _union(notes: Iterable[gc_marks.Note]) -> tuple[set[str], set[str], set[str]]:
    manifests: set[str] = set()
    packs: set[str] = set()
    shard_ids: set[str] = set()
    for note in notes:
        manifests |= note.manifests
        packs |= note.packs
        shard_ids |= note.shards
    return manifests, packs, shard_ids


class _Collector:
    def __init__(self, remote: Remote, reachable: set[str], report: GcReport, tmp_dir: Path, concurrency: int) -> None:
        self.remote, self.reachable, self.report, self.tmp_dir = remote, reachable, report, tmp_dir
        self.tables = ManifestPacks(remote, concurrency)
        self.due: list[gc_marks.Note] = []
        self.keep_keys: set[str] = set()
        self.protected: tuple[set[str], set[str], set[str]] = (set(), set(), set())
        #: Format 2: every shard, read whole (None: a format 1 remote).
        self.scan: gc_shards.ShardScan | None = None

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

    def plan(self) -> tuple[set[str], set[str], set[str]]:
        """What phase 2 may delete now: listed in a due note, and still unreachable (manifests)
        or named by no surviving manifest (packs); shards listed in a due note (their
        reachable entries are rescued first); never what a young `keep` note names."""
        listed_m, listed_p, listed_s = _union(self.due)
        gone_m, gone_p = self.report.deleted_manifests, self.report.deleted_packs
        present_m = self.report.manifests.keys() - gone_m.keys()
        present_s = self.report.shards.keys() - self.report.deleted_shards.keys()
        cand_m = (listed_m & present_m) - self.reachable - self.protected[0]
        cand_p = (listed_p & (self.report.packs.keys() - gone_p.keys())) - self.protected[1]
        cand_s = (listed_s & present_s) - self.protected[2] - set(self.report.written_shards)
        if cand_p:
            named = self.tables.packs_of(present_m - cand_m)
            if self.scan is not None and named is not None:
                named = None if self.scan.damaged else named | self.scan.packs_named(present_s - cand_s, self.reachable)
            cand_p = set() if named is None else cand_p - named
        return cand_m, cand_p, cand_s

    def delete(self) -> None:
        """Phase 2 in a confirmed run: the `deleting` / `keep` handshake, then deletions."""
        notes = [gc_marks.write_note(self.remote, "deleting", self.tmp_dir)]
        try:
            # Only now read `keep` notes: a pusher who wrote one after this read sees our
            # `deleting` note and waits for us to finish before it writes anything.
            if not self.read_keeps():
                self.report.stopped = "a keep note is unreadable"
                return
            cand_m, cand_p, cand_s = self.plan()
            self.rescue(cand_s)
            cand_m, cand_p, cand_s = self.plan()  # a rescue may have written a marked name again
            renewed = time.monotonic()
            # Manifests (and shards) first: a manifest never names a pack that is gone.
            order = [("s", i) for i in sorted(cand_s)] + [("m", o) for o in sorted(cand_m)]
            for kind, item in order + [("p", p) for p in sorted(cand_p)]:
                if time.monotonic() - renewed > gc_marks.DELETING_RENEW:
                    notes.append(gc_marks.write_note(self.remote, "deleting", self.tmp_dir))
                    self.remote.delete(notes.pop(0))
                    before = self.keep_keys
                    if not self.read_keeps():
                        self.report.stopped = "a keep note is unreadable"
                        return
                    if self.keep_keys - before:
                        cand_m, cand_p, cand_s = self.plan()
                    renewed = time.monotonic()
                if kind == "s" and item in cand_s:
                    self.remote.delete(layout.shard_key(item))
                    self.report.deleted_shards[item] = self.report.shards[item]
                    self.forget_dead(item, cand_s)
                elif kind == "m" and item in cand_m:
                    self.remote.delete(layout.manifest_key(item))
                    self.report.deleted_manifests[item] = self.report.manifests[item]
                elif kind == "p" and item in cand_p:
                    self.remote.delete(layout.pack_key(item))
                    self.report.deleted_packs[item] = self.report.packs[item]
        finally:
            for key in notes:
                self.remote.delete(key)

    def rescue(self, cand_s: set[str]) -> None:
        """Before marked shards go: their entries a ref reaches again, and no other shard
        holds, into a new shard (an object pushed again after the marking, say)."""
        if self.scan is None or not cand_s:
            return
        entries = [
            e
            for shard_id in cand_s
            for e in self.scan.entries.get(shard_id, ())
            if e.oid in self.reachable and not self.scan.held_elsewhere(e.oid, cand_s)
        ]
        self.report.written_shards += gc_shards.write_entries(self.remote, entries, self.tmp_dir)

    def forget_dead(self, shard_id: str, cand_s: set[str]) -> None:
        """Oids whose last entry left with this shard: gone from the remote (the remote
        record must forget them)."""
        assert self.scan is not None
        for e in self.scan.dead(shard_id, self.reachable):
            if e.oid not in self.report.manifests and not self.scan.held_elsewhere(e.oid, cand_s):
                self.report.deleted_manifests.setdefault(e.oid, 0)


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
        collector.scan = gc_shards.scan(remote)
        report.shards = dict(collector.scan.sizes)
        report.shard_entries = {e.oid: len(e.manifest) for es in collector.scan.entries.values() for e in es}
    marks = gc_marks.read_marks(remote, kinds=("pending",))
    report.unreadable_notes = list(marks.unreadable)
    collector.due = [n for n in marks.of("pending") if report.now - n.created >= grace_seconds]

    # Phase 2: delete what was marked at least a grace period ago and is still garbage.
    if collector.due:
        if confirm:
            collector.delete()
        elif collector.read_keeps():
            cand_m, cand_p, cand_s = collector.plan()
            report.deleted_manifests = {o: report.manifests[o] for o in cand_m}
            report.deleted_packs = {p: report.packs[p] for p in cand_p}
            report.deleted_shards = {i: report.shards[i] for i in cand_s}
            for shard_id in cand_s:
                collector.forget_dead(shard_id, cand_s)
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
    report.marked_manifests = {o: report.manifests[o] for o in sorted(live - collector.reachable)}
    if collector.scan is not None:
        named = _mark_shards(collector, marks, named)
    if named is not None:  # else a live manifest is damaged: mark no pack
        unreferenced = report.packs.keys() - report.deleted_packs.keys() - named
        report.marked_packs = {p: report.packs[p] for p in sorted(unreferenced)}
    report.damaged_manifests = collector.tables.damaged
    if confirm and (report.marked_manifests or report.marked_packs or report.marked_shards):
        report.pending_note = gc_marks.write_note(
            remote,
            "pending",
            tmp_dir,
            report.marked_manifests,
            report.marked_packs,
            created=report.now,
            extra={"bytes": report.marked_bytes},
            shards=report.marked_shards,
        )
    return report


def _mark_shards(collector: _Collector, marks: gc_marks.Marks, named: set[str] | None) -> set[str] | None:
    """Phase 1 on shards: each shard holding an entry no ref reaches (and not marked
    already) is replaced by a compacted shard of its reachable entries, written first (in
    a confirmed run), then marked; its unreachable oids are marked like manifests. The
    packs named: by every shard left unmarked and by every reachable entry."""
    scan, report, reachable = collector.scan, collector.report, collector.reachable
    assert scan is not None
    present = report.shards.keys() - report.deleted_shards.keys()
    already = marks.shards
    to_mark = sorted(i for i in present - already if scan.dead(i, reachable))
    if report.confirm and to_mark:
        kept = [e for i in to_mark for e in scan.entries[i] if e.oid in reachable]
        report.written_shards += gc_shards.write_entries(collector.remote, kept, collector.tmp_dir)
    report.marked_shards = {i: report.shards[i] for i in to_mark}
    for i in to_mark:
        for e in scan.dead(i, reachable):
            report.marked_manifests.setdefault(e.oid, 0)
    if named is None or scan.damaged:
        return None
    return named | scan.packs_named(present - already - set(to_mark), reachable)


def _remove_expired_notes(remote: Remote, report: GcReport) -> None:
    """`keep` notes past the grace period, and `deleting` notes of a gc that died or dated
    in the future (pushers ignore those anyway)."""
    for key, kind, created in gc_marks.list_notes(remote):
        age = report.now - created
        if (kind == "keep" and age >= report.grace_seconds) or (
            kind == "deleting" and not -gc_marks.FUTURE_SKEW <= age < gc_marks.DELETING_TIMEOUT
        ):
            remote.delete(key)
