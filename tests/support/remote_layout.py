"""A directory remote's manifests in either remote format, for tests that look at or
damage what a remote holds: per-object keys (format 1) and shard entries (format 2) alike.

Owns: finding, rewriting and removing one object's manifest on a directory remote whatever
its format, so a test that damages "the remote's manifest of X" says so once and holds for
both formats. A rewritten shard gets its new name (the sha256 of its bytes) and the old
one is removed, as a remote holding only the new bytes would look.
Must not: import gitmlx at module level (the formats are read from the outside, as
tests/support/formats.py does); `new_process` is the one exception, and imports lazily.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.support.formats import (
    MANIFEST_KEY,
    OID,
    SHARD_KEY,
    decode_shard,
    encode_shard,
    manifest_key,
    shard_key,
)


def remote_format(root: Path) -> int | None:
    marker = root / "mlx-remote.json"
    return json.loads(marker.read_bytes())["format"] if marker.is_file() else None


def make_format_1(root: Path) -> None:
    """Mark a directory remote that has nothing yet as format 1 (a writer then keeps it so)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "mlx-remote.json").write_bytes(b'{"format": 1, "tool": "gitmlx"}\n')


def make_s3_format_1(client, bucket: str, prefix: str) -> None:
    """`make_format_1` for an S3 remote (`prefix` without its trailing slash)."""
    key = f"{prefix}/mlx-remote.json" if prefix else "mlx-remote.json"
    client.put_object(Bucket=bucket, Key=key, Body=b'{"format": 1, "tool": "gitmlx"}\n')


def shard_paths(root: Path) -> list[Path]:
    folder = root / "shards"
    return (
        sorted(p for p in folder.glob("*.shard") if SHARD_KEY.fullmatch(f"shards/{p.name}")) if folder.is_dir() else []
    )


def _shard_entries(path: Path) -> dict[str, tuple[int, bytes]]:
    data = path.read_bytes()
    return {oid: (size, data[off : off + n]) for oid, size, off, n in decode_shard(data)}


def manifest_oids(root: Path) -> set[str]:
    """Objects the remote has a manifest for: per-object keys and shard entries."""
    found = set()
    folder = root / "manifests"
    if folder.is_dir():
        found |= {p.name for p in folder.glob("*/*/*") if OID.fullmatch(p.name)}
    for path in shard_paths(root):
        found |= set(_shard_entries(path))
    return found


def manifest_count(root: Path) -> int:
    """Manifests stored (an oid in two places counts twice)."""
    folder = root / "manifests"
    keys = sum(1 for p in folder.glob("*/*/*") if OID.fullmatch(p.name)) if folder.is_dir() else 0
    return keys + sum(len(_shard_entries(p)) for p in shard_paths(root))


def read_manifest_bytes(root: Path, oid: str) -> bytes:
    """The first manifest of `oid` found (its key, else a shard); FileNotFoundError if none."""
    key = root / manifest_key(oid)
    if key.is_file():
        return key.read_bytes()
    for path in shard_paths(root):
        entries = _shard_entries(path)
        if oid in entries:
            return entries[oid][1]
    raise FileNotFoundError(f"no manifest of {oid[:10]} on {root}")


def has_manifest(root: Path, oid: str) -> bool:
    try:
        read_manifest_bytes(root, oid)
    except FileNotFoundError:
        return False
    return True


def _rewrite_shards(root: Path, oid: str, data: bytes | None) -> bool:
    touched = False
    for path in shard_paths(root):
        entries = _shard_entries(path)
        if oid not in entries:
            continue
        touched = True
        if data is None:
            del entries[oid]
        else:
            entries[oid] = (entries[oid][0], data)
        path.chmod(0o644)
        path.unlink()
        if entries:
            new = encode_shard((o, size, m) for o, (size, m) in entries.items())
            target = root / shard_key(hashlib.sha256(new).hexdigest())
            target.write_bytes(new)
    return touched


def write_manifest_bytes(root: Path, oid: str, data: bytes) -> None:
    """Replace every manifest of `oid` on the remote with `data` (a hostile remote)."""
    key = root / manifest_key(oid)
    found = key.is_file()
    if found:
        key.chmod(0o644)
        key.write_bytes(data)
    if not _rewrite_shards(root, oid, data) and not found:
        raise FileNotFoundError(f"no manifest of {oid[:10]} on {root}")


def delete_manifest(root: Path, oid: str) -> None:
    """Remove every manifest of `oid` (its key, and its entry from each shard)."""
    key = root / manifest_key(oid)
    found = key.is_file()
    key.unlink(missing_ok=True)
    if not _rewrite_shards(root, oid, None) and not found:
        raise FileNotFoundError(f"no manifest of {oid[:10]} on {root}")


def put_manifest(root: Path, oid: str, data: bytes) -> None:
    """Add a manifest as the remote's format writes one: its key (format 1), or a shard of
    its own (format 2)."""
    if remote_format(root) == 1:
        path = root / manifest_key(oid)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    size = int.from_bytes(data[40:48], "little")
    shard = encode_shard([(oid, size, data)])
    path = root / shard_key(hashlib.sha256(shard).hexdigest())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(shard)


def manifest_keys(root: Path) -> list[str]:
    """Per-object manifest keys present (format 1 data)."""
    folder = root / "manifests"
    if not folder.is_dir():
        return []
    return sorted(
        p.relative_to(root).as_posix()
        for p in folder.glob("*/*/*")
        if MANIFEST_KEY.fullmatch(p.relative_to(root).as_posix())
    )


def s3_manifest_bytes(client, bucket: str, prefix: str, oid: str) -> bytes:
    """`read_manifest_bytes` for an S3 remote (`prefix` without its trailing slash)."""
    base = f"{prefix}/" if prefix else ""
    try:
        return client.get_object(Bucket=bucket, Key=base + manifest_key(oid))["Body"].read()
    except client.exceptions.NoSuchKey:
        pass
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base + "shards/"):
        for obj in page.get("Contents", []):
            if SHARD_KEY.fullmatch(obj["Key"][len(base) :]):
                data = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                for entry_oid, _size, offset, length in decode_shard(data):
                    if entry_oid == oid:
                        return data[offset : offset + length]
    raise FileNotFoundError(f"no manifest of {oid[:10]} in s3://{bucket}/{prefix}")


def new_process() -> None:
    """Forget what this test process learnt of every remote (format marker, shard tables),
    as a new git-mlx process would: for unit tests that change a remote between calls."""
    from gitmlx.transfer import common

    common._READABLE.clear()
