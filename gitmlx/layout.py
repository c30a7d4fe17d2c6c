"""How objects are named on a remote (remote format 1: packs and manifests).

Owns: every key gitmlx reads or writes on a remote, and the format marker that lets a
client refuse a remote written by a newer, incompatible gitmlx. See
docs/storage-format.md. Everything else asks this module, so a new layout changes here
and in the transfer code only.
Must not: do I/O.
"""

from __future__ import annotations

import json

from gitmlx.errors import RemoteError
from gitmlx.pointer import is_valid_oid

FORMAT_KEY = "mlx-remote.json"
FORMAT_VERSION = 1
MANIFESTS_PREFIX = "manifests/"
PACKS_PREFIX = "packs/"
PACK_SUFFIX = ".pack"


def manifest_key(oid: str) -> str:
    """`manifests/<oid[0:2]>/<oid[2:4]>/<oid>`: the manifest of object `oid`."""
    if not is_valid_oid(oid):
        raise ValueError(f"invalid oid {oid!r}")
    return f"{MANIFESTS_PREFIX}{oid[0:2]}/{oid[2:4]}/{oid}"


def pack_key(pack_id: str) -> str:
    """`packs/<id[0:2]>/<id>.pack`: a pack named by the sha256 of its bytes."""
    if not is_valid_oid(pack_id):
        raise ValueError(f"invalid pack id {pack_id!r}")
    return f"{PACKS_PREFIX}{pack_id[0:2]}/{pack_id}{PACK_SUFFIX}"


def oid_from_manifest_key(key: str) -> str | None:
    oid = key.rsplit("/", 1)[-1]
    return oid if is_valid_oid(oid) and key == manifest_key(oid) else None


def pack_id_from_key(key: str) -> str | None:
    name = key.rsplit("/", 1)[-1].removesuffix(PACK_SUFFIX)
    return name if is_valid_oid(name) and key == pack_key(name) else None


def format_document() -> bytes:
    return (json.dumps({"format": FORMAT_VERSION, "tool": "gitmlx"}, sort_keys=True) + "\n").encode()


def check_format(data: bytes, where: str) -> None:
    """Refuse a remote whose format this client does not know (never guess)."""
    try:
        version = json.loads(data.decode("utf-8"))["format"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise RemoteError(
            f"remote '{where}' has an unreadable {FORMAT_KEY}",
            "check the remote URL; this is not a gitmlx remote, or its marker is damaged",
        ) from None
    if version != FORMAT_VERSION:
        raise RemoteError(
            f"remote '{where}' uses gitmlx remote format {version!r}; this gitmlx reads format {FORMAT_VERSION}",
            "upgrade gitmlx (./install.sh from a newer checkout)",
        )
