"""`gc --remote` on a format 2 remote's shards: which manifests each shard holds, which of
them no ref reaches, and the compacted shards that replace a shard before it is marked.

Owns: reading every shard whole (checked against its name and trailer), the packs each
entry names, and writing replacement shards (phase 1: a shard's reachable entries before
the shard is marked; phase 2: entries reachable again before a marked shard is deleted).
Must not: decide the phases or the notes handshake (gc.py), or print.

Why a shard is replaced before it is marked and rescued before it is deleted: readers and
pushers find an object through any shard that names it, so a shard may go only once every
entry a ref still reaches is in another shard. A pusher ignores entries of shards a
pending note marks (they are due for deletion) and writes such objects again into its own
shard, as it rewrites a marked manifest key (docs/storage-format.md, "Garbage collection").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.errors import IntegrityError, ObjectNotFound
from gitmlx.format import shard
from gitmlx.format.manifest import decode
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import Remote
from gitmlx.transfer import shards


@dataclass(frozen=True)
class Entry:
    oid: str
    size: int
    manifest: bytes
    packs: frozenset[str]


@dataclass
class ShardScan:
    """Every shard of the remote, read whole."""

    entries: dict[str, list[Entry]] = field(default_factory=dict)  # shard id -> its entries
    sizes: dict[str, int] = field(default_factory=dict)  # shard id -> bytes
    #: A shard or one of its manifests is damaged, or a shard vanished during the scan:
    #: then no pack can be shown to be unreferenced.
    damaged: bool = False

    def packs_named(self, kept: Iterable[str], reachable: set[str]) -> set[str]:
        """Packs the entries of shards `kept` name, plus those the reachable entries of
        every other shard name (they are rescued before their shard goes)."""
        kept = set(kept)
        named: set[str] = set()
        for shard_id, entries in self.entries.items():
            for e in entries:
                if shard_id in kept or e.oid in reachable:
                    named |= e.packs
        return named

    def dead(self, shard_id: str, reachable: set[str]) -> list[Entry]:
        return [e for e in self.entries.get(shard_id, ()) if e.oid not in reachable]

    def held_elsewhere(self, oid: str, besides: set[str]) -> bool:
        """Whether a shard outside `besides` names `oid`."""
        return any(
            shard_id not in besides and any(e.oid == oid for e in entries) for shard_id, entries in self.entries.items()
        )


def scan(remote: Remote) -> ShardScan:
    """Read every listed shard whole and decode every manifest in it."""
    directory = shards.ShardDirectory(remote)  # its own: gc must see the remote as it is now
    found = ShardScan()
    for shard_id in directory.shard_ids():
        try:
            data = memoryview(directory.whole(shard_id))
            entries = []
            for e in shard.decode(data):
                manifest = bytes(data[e.offset : e.offset + e.length])
                packs = frozenset(decode(manifest, Pointer(e.oid, e.size)).packs())
                entries.append(Entry(e.oid, e.size, manifest, packs))
        except (ObjectNotFound, IntegrityError):
            found.damaged = True
            continue
        found.entries[shard_id] = entries
        found.sizes[shard_id] = len(data)
    return found


def write_entries(remote: Remote, entries: Iterable[Entry], tmp_dir: Path) -> list[str]:
    """Put shards holding these entries (one oid once); their ids."""
    unique = {e.oid: e for e in entries}
    if not unique:
        return []
    return shards.ShardDirectory(remote).write([(e.oid, e.size, e.manifest) for e in unique.values()], tmp_dir)
