"""The checked-in format 1 remote (tests/fixtures/format1/), and reading any remote's keys
in the format 1 layout, so that tests can check what an older gitmlx wrote is still read,
and that writing to such a remote keeps it format 1.

Owns: unpacking the fixture archive (a bare git repository whose embedded remote is in
format 1), the expectations recorded beside it (expected.json), listing a directory
remote's or an S3 prefix's keys, copying a directory remote's keys to S3, naming which
format 1 key kind a key is, and finding which features of format 1 a remote's manifests
use (docs/storage-format.md).
Must not: import gitmlx: the fixture is read as another tool would read it, so a change in
gitmlx's own reader cannot change what the tests expect.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from tests.support.commands import git
from tests.support.formats import MANIFEST_KEY, PACK_KEY, decode_manifest, manifest_key
from tests.support.repos import assert_clean_worktree, assert_content, tracked_files

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "format1"
ARCHIVE = FIXTURE_DIR / "format1.tar.xz"
EXPECTED = FIXTURE_DIR / "expected.json"
#: The bare repository's folder in the archive; its embedded remote is BARE/mlx.
BARE = "remote.git"
MARKER = "mlx-remote.json"
#: The smallest object a format 1 writer may store as a solo pack (its own bytes as a pack).
SOLO_MIN = 8 * 1024 * 1024
GC_NOTE_KEY = re.compile(r"gc/(pending|keep|deleting)-\d{8}T\d{6}Z-[0-9a-f]{16}\.json")
#: The features docs/storage-format.md gives format 1, each found in a remote by `features`.
FEATURES = (
    "empty object",
    "tiny object",
    "objects sharing a pack",
    "zstd chunk",
    "raw chunk",
    "object in two packs",
    "chunk named by two objects",
    "chunk named twice in one object",
    "multi-chunk object",
    "solo pack",
    "gc note",
)


def expected() -> dict:
    """What the fixture holds, as its generator recorded it (tests/fixtures/format1/README.md)."""
    return json.loads(EXPECTED.read_text(encoding="utf-8"))


def unpack(dest: Path) -> Path:
    """Unpack the fixture into `dest`; the bare repository's path."""
    with tarfile.open(ARCHIVE, "r:xz") as archive:
        if hasattr(tarfile, "data_filter"):  # refuses links and paths leaving `dest`
            archive.extractall(dest, filter="data")
        else:  # Python builds before the extraction filters; the archive is our own
            archive.extractall(dest)  # noqa: S202
    return dest / BARE


def format1_kind(key: str) -> str | None:
    """Which key of the format 1 layout `key` is (`marker`, `manifest`, `pack`, `gc`), or
    None for a key format 1 does not name."""
    if key == MARKER:
        return "marker"
    if MANIFEST_KEY.fullmatch(key):
        return "manifest"
    if PACK_KEY.fullmatch(key):
        return "pack"
    if GC_NOTE_KEY.fullmatch(key):
        return "gc"
    return None


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def directory_keys(root: Path) -> dict[str, str]:
    """Every file under a directory remote's root: key -> sha256 of its bytes."""
    return {p.relative_to(root).as_posix(): sha256(p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()}


def s3_keys(client: object, bucket: str, prefix: str) -> dict[str, str]:
    """Every S3 object under `prefix` (`team/models`, no trailing slash): key relative to
    the prefix -> sha256 of its bytes."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            found[obj["Key"].removeprefix(f"{prefix}/")] = sha256(body)
    return found


def upload_to_s3(client: object, bucket: str, prefix: str, root: Path) -> int:
    """Copy every file of a directory remote to S3 as `prefix/KEY` (how a bucket holding
    the same remote looks); the number of keys copied."""
    count = 0
    for key in directory_keys(root):
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=(root / key).read_bytes())
        count += 1
    return count


def features(keys: Iterable[str], read: Callable[[str], bytes]) -> dict[str, list[str]]:
    """Which format 1 features a remote holding `keys` uses (read through `read(key)`):
    feature -> the sorted oids (or note keys) that show it. Every manifest must decode."""
    manifests = {}
    found: dict[str, set[str]] = {name: set() for name in FEATURES}
    for key in keys:
        match = MANIFEST_KEY.fullmatch(key)
        if match:
            manifests[match.group(3)] = decode_manifest(read(key), match.group(3))
        elif GC_NOTE_KEY.fullmatch(key):
            found["gc note"].add(key)
    named_by: dict[tuple[str, int], set[str]] = {}
    objects_in: dict[str, set[str]] = {}
    for oid, (size, chunks) in manifests.items():
        places = [(c.pack, c.offset) for c in chunks]
        packs = {c.pack for c in chunks}
        for place in places:
            named_by.setdefault(place, set()).add(oid)
        for pack in packs:
            objects_in.setdefault(pack, set()).add(oid)
        checks = {
            "empty object": size == 0 and not chunks,
            "tiny object": 0 < size <= 64,
            "zstd chunk": any(c.codec == 1 for c in chunks),
            "raw chunk": any(c.codec == 0 for c in chunks),
            "object in two packs": len(packs) >= 2,
            "chunk named twice in one object": max(Counter(places).values(), default=0) >= 2,
            "multi-chunk object": len(chunks) >= 3,
            "solo pack": packs == {oid} and size >= SOLO_MIN,
        }
        for name, holds in checks.items():
            if holds:
                found[name].add(oid)
    for oids in named_by.values():
        if len(oids) >= 2:
            found["chunk named by two objects"] |= oids
    for oids in objects_in.values():
        if len(oids) >= 3:
            found["objects sharing a pack"] |= oids
    return {name: sorted(values) for name, values in found.items()}


def commit_next_version(work: Path, expected: Mapping) -> tuple[dict, dict[str, bytes]]:
    """In a clone of the fixture, commit "v3" on its branch: model.bin edited (most of its
    chunks are v2's), a new file, and tiny/d.bin back from v1 (an object the remote already
    holds). Returns v3 as expected.json records a commit, and the new objects' bytes by path."""
    v1, v2 = expected["commits"][1:]
    git("checkout", "-q", expected["branch"], cwd=work)
    model = (work / "model.bin").read_bytes()
    new = {
        "model.bin": model[: 100 * 1024] + b"v3 edit" * 1000 + model[100 * 1024 :],
        "v3/notes.bin": b"trained for one more epoch\n" * 3000,
    }
    for name, data in new.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(data)
    git("checkout", v1["id"], "--", "tiny/d.bin", cwd=work)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "v3", cwd=work)
    files = {**v2["files"], "tiny/d.bin": v1["files"]["tiny/d.bin"]}
    files.update({name: {"sha256": sha256(data), "size": len(data)} for name, data in new.items()})
    return {"id": git("rev-parse", "HEAD", cwd=work).stdout.strip(), "files": files}, new


def assert_stays_format1(before: Mapping[str, str], after: Mapping[str, str], new_oids: Iterable[str]) -> set[str]:
    """After a push to a format 1 remote (keys -> sha256 before and after): every key it
    held is unchanged, the marker first, every key is one format 1 has, and the new objects'
    manifests and at least one pack were added. Returns the keys added."""
    assert after.get(MARKER) == before[MARKER], "the format marker changed"
    assert {key: after.get(key) for key in before} == dict(before), "a key of the format 1 remote changed"
    stray = sorted(key for key in after if format1_kind(key) is None)
    assert not stray, f"the push wrote keys format 1 does not have: {stray}"
    added = set(after) - set(before)
    missing = {manifest_key(oid) for oid in new_oids} - added
    assert not missing, f"manifests not written in format 1's layout: {sorted(missing)}"
    assert any(format1_kind(key) == "pack" for key in added), sorted(added)
    return added


def _check_out(work: Path, commit: str) -> None:
    """Check out `commit` unless HEAD is there already (a checkout costs a hook's start)."""
    if git("rev-parse", "HEAD", cwd=work).stdout.strip() != commit:
        git("checkout", "-q", commit, cwd=work)


def assert_remote_fsck_clean(work: Path, commit: Mapping) -> None:
    """With `commit` checked out, `git mlx fsck --remote --full` finds the remote serving
    every object of it, rebuilt and verified."""
    _check_out(work, commit["id"])
    result = git("mlx", "fsck", "--remote", "--full", "--json", cwd=work, check=False)
    doc = json.loads(result.stdout)
    assert result.returncode == 0 and doc["ok"], result
    assert doc["remote"]["full"] and not doc["remote"]["problems"], result
    assert doc["remote"]["checked"] == len({f["sha256"] for f in commit["files"].values()}), result


def assert_restores(work: Path, commits: Iterable[Mapping]) -> None:
    """A checkout of each commit (expected.json's shape: id, files path -> sha256 and size)
    gives exactly its tracked files, each with its bytes, and a clean status."""
    for commit in commits:
        _check_out(work, commit["id"])
        files = commit["files"]
        tracked = {p for p in tracked_files(work, commit["id"]) if p != ".gitattributes"}
        assert tracked == set(files), f"commit {commit['id'][:10]} tracks {sorted(tracked)}"
        for path, entry in files.items():
            assert (work / path).stat().st_size == entry["size"], f"{path} at {commit['id'][:10]} has another size"
            assert_content(work, path, entry["sha256"])
        assert_clean_worktree(work)
