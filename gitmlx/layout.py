"""How objects are named on a remote.

Owns: the mapping from an oid to the key(s) a backend stores it under. Everything else
asks this module, so a new remote layout (chunked dedup) changes only here and the
transfer code that calls it. See docs/remote-format.md.
Must not: do I/O.
"""

from __future__ import annotations

from gitmlx.pointer import is_valid_oid

OBJECTS_PREFIX = "objects/"


def object_key(oid: str) -> str:
    """`objects/<oid[0:2]>/<oid[2:4]>/<oid>`: sharded so no directory grows huge."""
    if not is_valid_oid(oid):
        raise ValueError(f"invalid oid {oid!r}")
    return f"{OBJECTS_PREFIX}{oid[0:2]}/{oid[2:4]}/{oid}"


def oid_from_key(key: str) -> str | None:
    """The oid an object key names, or None for any other key."""
    if not key.startswith(OBJECTS_PREFIX):
        return None
    oid = key.rsplit("/", 1)[-1]
    return oid if is_valid_oid(oid) and object_key(oid) == key else None
