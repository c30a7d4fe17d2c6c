"""What a remote holds for one object, checked without reading pack bytes: a manifest
that validates, and every pack it names at least as long as the ranges it uses.

Owns: that check, shared by push (an object it skips must pass it, so a re-push repairs
a missing manifest, a damaged one, and a lost or truncated pack) and `fsck --remote`
(which adds a full rebuild: bytes changed in place, same size, show only there).
Must not: change the remote, or print.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gitmlx.errors import IntegrityError, ObjectNotFound
from gitmlx.format import layout
from gitmlx.format.manifest import Manifest
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import Remote
from gitmlx.transfer.rebuild import fetch_manifest


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
            return self._sizes.setdefault(pack_id, size)

    def covers(self, pack_id: str, end: int) -> bool:
        """The pack exists and holds at least `end` bytes."""
        size = self.get(pack_id)
        return size is not None and size >= end


#: RemoteCopy.state values.
INTACT, MISSING, INVALID, PACKS = "intact", "missing", "invalid manifest", "damaged packs"


@dataclass(frozen=True)
class RemoteCopy:
    """What the remote holds for one object, as far as sizes tell."""

    state: str
    #: What is wrong, for a message; None when intact.
    problem: str | None = None
    #: The validated manifest (None when missing or invalid).
    manifest: Manifest | None = None
    #: Packs the manifest names that are missing or shorter than its chunks need.
    bad_packs: frozenset[str] = frozenset()

    @property
    def intact(self) -> bool:
        return self.state == INTACT


def missing_copy(remote: Remote) -> RemoteCopy:
    """What `check_copy` finds for an object the remote has no manifest of."""
    return RemoteCopy(MISSING, f"not on remote '{remote.display_url}' (no manifest)")


def check_copy(remote: Remote, pointer: Pointer, sizes: PackSizes) -> RemoteCopy:
    """The manifest (one GET, or a shard entry: shards.py), and a size per pack it names
    (cached in `sizes`)."""
    try:
        manifest, _ = fetch_manifest(remote, pointer, probe_keys=True)
    except ObjectNotFound:
        return missing_copy(remote)
    except IntegrityError as exc:
        return RemoteCopy(INVALID, exc.message)
    needed: dict[str, int] = {}
    for chunk in manifest.chunks:
        needed[chunk.pack] = max(needed.get(chunk.pack, 0), chunk.offset + chunk.stored)
    bad: dict[str, str] = {}
    for pack_id, end in needed.items():
        size = sizes.get(pack_id)
        if size is None or size < end:
            bad[pack_id] = "missing" if size is None else f"truncated ({size} bytes, its chunks need {end})"
    if not bad:
        return RemoteCopy(INTACT, manifest=manifest)
    pack_id, state = next(iter(bad.items()))
    return RemoteCopy(
        PACKS, f"pack {pack_id[:10]} on remote '{remote.display_url}' is {state}", manifest, frozenset(bad)
    )
