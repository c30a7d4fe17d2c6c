"""What a remote holds, in numbers: objects, logical bytes and bytes stored.

Owns: listing a remote's manifests, shards and packs (the one place gitmlx lists a remote; dedup
itself never does) for `git mlx du` and `fsck --remote`.
Must not: change the remote.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from gitmlx.format import layout
from gitmlx.remotes.base import Remote
from gitmlx.transfer import shards
from gitmlx.transfer.common import check_readable

_SIZE_FIELD = struct.Struct("<Q")


@dataclass
class RemoteUsage:
    objects: dict[str, int] = field(default_factory=dict)  # oid → logical size
    packs: dict[str, int] = field(default_factory=dict)  # pack id → bytes
    manifest_bytes: int = 0

    @property
    def logical_bytes(self) -> int:
        return sum(self.objects.values())

    @property
    def stored_bytes(self) -> int:
        return sum(self.packs.values()) + self.manifest_bytes


def remote_usage(remote: Remote, known_sizes: Mapping[str, int]) -> RemoteUsage:
    """List the remote; sizes of objects not in `known_sizes` are read from manifest headers."""
    usage = RemoteUsage()
    for entry in remote.list(layout.MANIFESTS_PREFIX):
        oid = layout.oid_from_manifest_key(entry.key)
        if oid is None:
            continue
        usage.manifest_bytes += entry.size
        size = known_sizes.get(oid)
        if size is None:
            header = remote.read_range(entry.key, 40, 8)
            size = _SIZE_FIELD.unpack(header)[0] if len(header) == 8 else 0
        usage.objects[oid] = size
    for entry in remote.list(layout.PACKS_PREFIX):
        pack_id = layout.pack_id_from_key(entry.key)
        if pack_id is not None:
            usage.packs[pack_id] = entry.size
    if check_readable(remote) == 2:
        directory = shards.directory(remote)
        for oid, place in directory.entries():
            usage.objects.setdefault(oid, place.size)
        usage.manifest_bytes += sum(directory.sizes().values())
    return usage
