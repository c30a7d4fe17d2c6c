"""How objects are named on a remote (remote formats 1 and 2: packs, manifests, shards).

Owns: every key gitmlx reads or writes on a remote, and the format marker that lets a
client refuse a remote written by a newer, incompatible gitmlx. See
docs/storage-format.md. Everything else asks this module, so a new layout changes here
and in the transfer code only.
Must not: do I/O.
"""

from __future__ import annotations

import re
import time

from gitmlx.errors import RemoteError, shown
from gitmlx.format.pointer import is_valid_oid

FORMAT_KEY = "mlx-remote.json"
#: The format a new remote is created in; a remote already marked 1 is still written as 1.
FORMAT_VERSION = 2
#: Formats this client reads and writes.
FORMATS = (1, 2)
MANIFESTS_PREFIX = "manifests/"
#: Format 2: manifests batched in shards, `shards/<sha256 of the shard>.shard`.
SHARDS_PREFIX = "shards/"
SHARD_SUFFIX = ".shard"
PACKS_PREFIX = "packs/"
PACK_SUFFIX = ".pack"
#: Garbage-collection notes (`gc --remote` and cooperating pushers); see "Garbage collection".
GC_PREFIX = "gc/"
#: A directory remote's writes in progress: `tmp/put-<pid>-<16 hex>`, renamed to their key
#: once whole. The embedded remote beside a bare repository shares its folder with that
#: repository's local store, whose upkeep therefore leaves these alone.
DIRECTORY_WRITE_PREFIX = "put-"
GC_KINDS = ("pending", "keep", "deleting")
#: Compiled on first use (re's cache), not at import: every filter start imports this module.
_GC_KEY_RE = r"gc/(pending|keep|deleting)-([0-9]{8}T[0-9]{6}Z)-([0-9a-f]{16})\.json"


def manifest_key(oid: str) -> str:
    """`manifests/<oid[0:2]>/<oid[2:4]>/<oid>`: the manifest of object `oid`."""
    if not is_valid_oid(oid):
        raise ValueError(f"invalid oid {oid!r}")
    return f"{MANIFESTS_PREFIX}{oid[0:2]}/{oid[2:4]}/{oid}"


def pack_key(pack_id: str) -> str:
    """`packs/<id[0:2]>/<id>.pack`: a pack named by its pack id (`format.pack_id`)."""
    if not is_valid_oid(pack_id):
        raise ValueError(f"invalid pack id {pack_id!r}")
    return f"{PACKS_PREFIX}{pack_id[0:2]}/{pack_id}{PACK_SUFFIX}"


def shard_key(shard_id: str) -> str:
    """`shards/<id>.shard`: a shard of manifests named by the sha256 of its bytes."""
    if not is_valid_oid(shard_id):
        raise ValueError(f"invalid shard id {shard_id!r}")
    return f"{SHARDS_PREFIX}{shard_id}{SHARD_SUFFIX}"


def shard_id_from_key(key: str) -> str | None:
    name = key.removeprefix(SHARDS_PREFIX).removesuffix(SHARD_SUFFIX)
    return name if is_valid_oid(name) and key == shard_key(name) else None


def oid_from_manifest_key(key: str) -> str | None:
    oid = key.rsplit("/", 1)[-1]
    return oid if is_valid_oid(oid) and key == manifest_key(oid) else None


def pack_id_from_key(key: str) -> str | None:
    name = key.rsplit("/", 1)[-1].removesuffix(PACK_SUFFIX)
    return name if is_valid_oid(name) and key == pack_key(name) else None


def gc_key(kind: str, created: int, token: str) -> str:
    """`gc/<kind>-<YYYYmmddTHHMMSSZ>-<16 hex>.json`: a gc note written at `created` (UTC)."""
    if kind not in GC_KINDS or not re.fullmatch(r"[0-9a-f]{16}", token):
        raise ValueError(f"invalid gc note {kind!r} {token!r}")
    return f"{GC_PREFIX}{kind}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(created))}-{token}.json"


def gc_note_from_key(key: str) -> tuple[str, int] | None:
    """(kind, created as Unix seconds) of a gc note key; None for any other key."""
    match = re.fullmatch(_GC_KEY_RE, key)
    if match is None:
        return None
    try:
        created = time.strptime(match.group(2), "%Y%m%dT%H%M%SZ")
    except ValueError:
        return None
    import calendar  # not at module level: the filter imports this module (start-up)

    return match.group(1), calendar.timegm(created)


def format_document(version: int = FORMAT_VERSION) -> bytes:
    import json  # not at module level: the filter imports this module (start-up)

    return (json.dumps({"format": version, "tool": "gitmlx"}, sort_keys=True) + "\n").encode()


def check_format(data: bytes, where: str) -> int:
    """The remote's format version; refuse one this client does not know (never guess)."""
    import json  # not at module level: the filter imports this module (start-up)

    try:
        version = json.loads(data.decode("utf-8"))["format"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        raise RemoteError(
            f"remote '{where}' has an unreadable {FORMAT_KEY}",
            "check the remote URL; this is not a gitmlx remote, or its marker is damaged",
        ) from None
    if type(version) is not int or version not in FORMATS:  # true == 1 == 1.0 in Python
        raise RemoteError(
            f"remote '{where}' uses gitmlx remote format {shown(version)}; this gitmlx reads formats 1 and 2",
            "upgrade gitmlx (./install.sh from a newer checkout)",
        )
    return version
