"""Which objects a remote holds, asked as cheaply as is safe: the remote record first,
then one check per object it does not vouch for.

Owns: the rules for trusting and writing the remote record (store/remote_record.py,
docs/local-store.md "Remote record"), shared by push (upload.py) and `git mlx status`:

* a row is written only for an object whose manifest this client wrote, or checked as
  intact (remote_check), after reading the remote's gc notes, with the time the notes
  were read; an object a `pending` note lists is never recorded;
* a row is trusted only while younger than the caller's horizon (the gc grace period:
  gc deletes nothing that no `pending` note has listed for that long) and while no
  `pending` note lists the object;
* a remote without its format marker (new, or wiped) forgets every row it had.
Must not: upload, or print.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import Remote
from gitmlx.store.remote_record import RemoteRecord
from gitmlx.transfer import gc_marks, shards
from gitmlx.transfer.common import check_format, parallel
from gitmlx.transfer.remote_check import PackSizes, RemoteCopy, check_copy, missing_copy


@dataclass
class Confirmation:
    """What one look at a remote found, for a list of objects."""

    #: When the gc notes were read (Unix seconds): the time rows written from this look get.
    looked_at: int
    marks: gc_marks.Marks
    #: Objects the record vouched for (no request made for them).
    trusted: set[str] = field(default_factory=set)
    #: Objects checked on the remote, with what was found.
    copies: dict[str, RemoteCopy] = field(default_factory=dict)
    #: Objects neither trusted nor asked about (past `ask_at_most`).
    unasked: set[str] = field(default_factory=set)
    #: The remote's format version (None: no marker, and none was written).
    format: int | None = None

    def present(self) -> set[str]:
        """Objects on the remote: trusted, or checked intact."""
        return self.trusted | {oid for oid, copy in self.copies.items() if copy.intact}


def look(
    remote: Remote,
    pointers: list[Pointer],
    record: RemoteRecord | None,
    trust_seconds: int | None,
    concurrency: int,
    sizes: PackSizes,
    marker_from: Path | None = None,
    ask_at_most: int | None = None,
) -> Confirmation:
    """Check the remote for each of `pointers` (unique) the record does not vouch for,
    and record what is intact.

    `trust_seconds` None: trust no row (an explicit `git mlx push` asks about everything,
    which is how it repairs). `marker_from`: a folder to write the format marker from when
    the remote has none (a writer); None reads only. `ask_at_most`: check only the first
    that many objects the record does not vouch for (a reader that must stay quick)."""
    version = check_format(remote, create=False)
    if version is None:
        if record is not None:
            record.forget(remote.identity)  # new or wiped: nothing recorded of it holds
        if marker_from is not None:
            version = check_format(remote, create=True, tmp_dir=marker_from)
    # Notes first, then the record and the checks: what no note lists now cannot be
    # deleted before a grace period from now (docs/storage-format.md, "Garbage collection").
    looked_at = gc_marks.now()
    marks = gc_marks.read_marks(remote)
    seen = Confirmation(looked_at, marks, format=version)
    if version == 2 and marks.shards:
        shards.directory(remote).ignore(marks.shards)
    if record is not None and trust_seconds is not None and trust_seconds > 0:
        seen.trusted = record.known(remote.identity, pointers, looked_at - trust_seconds + 1) - marks.manifests
    todo = [p for p in pointers if p.oid not in seen.trusted]
    if ask_at_most is not None and len(todo) > ask_at_most:
        seen.unasked = {p.oid for p in todo[ask_at_most:]}
        todo = todo[:ask_at_most]

    same: dict[RemoteCopy, RemoteCopy] = {}

    def check(p: Pointer) -> None:
        copy = check_copy(remote, p, sizes)
        if copy.manifest is None:  # one object for every "missing" (a first push: all of them)
            copy = same.setdefault(copy, copy)
        seen.copies[p.oid] = copy

    asked = todo
    if version == 2:
        # No request for an oid no shard names (after one listing of shards/): most of a
        # first push, and missing (rebuild.fetch_manifest's `probe_keys` says why no key is
        # asked for). Those are looked up in a loop; a pool's hand-offs would cost more than
        # the lookups. The rest read a manifest and stat packs.
        directory = shards.directory(remote)
        missing = missing_copy(remote)  # what check() finds for them, without asking again
        asked = []
        for p in todo:
            if directory.places(p.oid):
                asked.append(p)
            else:
                seen.copies[p.oid] = missing
    parallel(check, asked, concurrency)
    if record is not None:
        intact = [p for p in todo if seen.copies[p.oid].intact and p.oid not in marks.manifests]
        record.add(remote.identity, intact, looked_at)
    return seen


def remember(record: RemoteRecord | None, remote: Remote, written: Iterable[Pointer], seen: Confirmation) -> None:
    """Record objects whose manifests this push wrote (after announcing any a note listed)."""
    if record is not None:
        record.add(remote.identity, written, seen.looked_at)
