"""`git mlx remote upgrade`: turn a format 1 remote into a format 2 one, in place.

Owns: the upgrade's order (docs/storage-format.md, "Upgrading a remote"): list every
format-1 manifest key, read and validate each, write shards holding them, and only then
replace the marker with the format 2 one (one atomic put).
Must not: delete anything (a reader that started before the upgrade keeps reading the
keys it knows; format 2 readers fall back to keys, so a format 1 pusher racing the upgrade
loses nothing), or print.
"""

from __future__ import annotations

import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.errors import IntegrityError, ObjectNotFound
from gitmlx.format import layout
from gitmlx.format.manifest import decode
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import Remote
from gitmlx.transfer import shards
from gitmlx.transfer.common import check_format, put_bytes
from gitmlx.transfer.rebuild import MANIFEST_LIMIT

_SIZE_FIELD = struct.Struct("<Q")  # the object size in a manifest header, at offset 40


@dataclass
class UpgradeReport:
    #: The remote's format before (None: nothing was ever pushed there).
    before: int | None = None
    #: Manifests copied into shards, and the shards written.
    copied: int = 0
    written_shards: list[str] = field(default_factory=list)
    #: Keys left out: damaged manifests (still on the remote, as before).
    damaged: list[str] = field(default_factory=list)


def upgrade(remote: Remote, tmp_dir: Path, concurrency: int = 8) -> UpgradeReport:
    """Copy every format-1 manifest of `remote` into shards, then mark it format 2."""
    report = UpgradeReport(before=check_format(remote, create=False))
    if report.before is None:
        put_bytes(remote, layout.FORMAT_KEY, layout.format_document(2), tmp_dir)
        return report
    oids = [o for e in remote.list(layout.MANIFESTS_PREFIX) if (o := layout.oid_from_manifest_key(e.key)) is not None]
    found: list[tuple[str, int, bytes]] = []
    lock = threading.Lock()

    def read(oid: str) -> None:
        try:
            data = remote.read_range(layout.manifest_key(oid), 0, MANIFEST_LIMIT)
            if len(data) < 48:
                raise IntegrityError("too short")
            size = _SIZE_FIELD.unpack_from(data, 40)[0]
            decode(data, Pointer(oid, size))
        except ObjectNotFound:
            return  # collected since the listing
        except IntegrityError:
            with lock:
                report.damaged.append(oid)
            return
        with lock:
            found.append((oid, size, data))

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        list(pool.map(read, oids))
    report.damaged.sort()
    if found:
        report.written_shards = shards.ShardDirectory(remote).write(sorted(found), tmp_dir)
        report.copied = len(found)
    if report.before != 2:
        put_bytes(remote, layout.FORMAT_KEY, layout.format_document(2), tmp_dir)
    return report
