"""Independent checks of what gitmlx promises about bytes at rest, for the reliability tests.

Owns: re-hashing a local store, validating a remote (a directory or an S3 prefix) as
docs/storage-format.md describes it, rebuilding objects from manifests and packs, sorting
work-tree files into content / pointer / absent / wrong, reading crash logs, and running
`git mlx fsck` when the command exists.
Must not: import gitmlx. The formats are read through tests/support/formats.py, from the
outside, so a bug in gitmlx's own reader cannot hide itself here.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.content import sha256_file
from tests.support.formats import (
    MANIFEST_KEY,
    PACK_KEY,
    SHARD_KEY,
    STORE_PACK_NAME,
    decode_manifest,
    decode_shard,
    is_loose_object_path,
    pack_key,
    pack_table_id,
    parse_pointer,
    parse_store_pack,
    rebuild,
    store_pack_name,
)

# --- the local store ---------------------------------------------------------------------


@dataclass
class StoreReport:
    objects: set[str] = field(default_factory=set)  # oids under valid names that hash to them
    corrupt: list[str] = field(default_factory=list)  # valid names whose bytes do not match
    tmp_files: set[str] = field(default_factory=set)  # names in tmp/ (a crashed writer's; allowed)

    @property
    def tmp_leftovers(self) -> int:
        return len(self.tmp_files)

    @property
    def ok(self) -> bool:
        return not self.corrupt


def check_store(store: Path) -> StoreReport:
    """Re-hash every file under a valid name in `store/objects` (symlinks are not objects)."""
    report = StoreReport()
    objects = store / "objects"
    if objects.is_dir():
        for path in objects.glob("*/*/*"):
            if not is_loose_object_path(path) or path.is_symlink() or not path.is_file():
                continue
            name = path.name
            if sha256_file(path) == name:
                report.objects.add(name)
            else:
                report.corrupt.append(f"local object {name[:10]} does not hash to its name ({path})")
    packs = store / "packs"
    if packs.is_dir():
        for path in packs.iterdir():
            if STORE_PACK_NAME.fullmatch(path.name) and path.is_file() and not path.is_symlink():
                _check_store_pack(path, report)
    tmp = store / "tmp"
    if tmp.is_dir():
        report.tmp_files = {p.name for p in tmp.iterdir() if p.is_file()}
    return report


def _check_store_pack(path: Path, report: StoreReport) -> None:
    """A store pack (docs/local-store.md, "Store packs"): a whole file whose index hashes
    to the trailer's digest and to the file's name, and whose every object hashes to its
    oid. Any pack there is under a valid name: all must hold."""
    data = path.read_bytes()
    try:
        pack = parse_store_pack(data)
    except ValueError as exc:
        report.corrupt.append(f"store pack {path.name}: {exc}")
        return
    if store_pack_name(pack.digest) != path.name:
        report.corrupt.append(f"store pack {path.name}: name does not match its index")
    for raw, offset, size in pack.entries:
        if hashlib.sha256(data[offset : offset + size]).digest() == raw:
            report.objects.add(raw.hex())
        else:
            report.corrupt.append(f"packed object {raw.hex()[:10]} in {path.name} does not hash to its name")


# --- a remote ----------------------------------------------------------------------------


@dataclass
class RemoteReport:
    objects: dict[str, int] = field(default_factory=dict)  # oid -> size, for valid manifests
    packs: set[str] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _DirView:
    def __init__(self, root: Path) -> None:
        self.root = root

    def keys(self) -> dict[str, int]:
        found = {}
        if not self.root.is_dir():
            return found
        for path in self.root.rglob("*"):
            if path.is_file() and path.relative_to(self.root).parts[0] != "tmp":
                found[path.relative_to(self.root).as_posix()] = path.stat().st_size
        return found

    def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        with open(self.root / key, "rb") as f:
            f.seek(start)
            return f.read() if length is None else f.read(length)


class _S3View:
    def __init__(self, client: object, bucket: str, prefix: str) -> None:
        self.client, self.bucket = client, bucket
        self.root = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def keys(self) -> dict[str, int]:
        found = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.root):
            for obj in page.get("Contents", []):
                found[obj["Key"][len(self.root) :]] = int(obj["Size"])
        return found

    def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        args = {"Bucket": self.bucket, "Key": self.root + key}
        if start or length is not None:
            args["Range"] = f"bytes={start}-{'' if length is None else start + length - 1}"
        return self.client.get_object(**args)["Body"].read()


def _check(view: _DirView | _S3View, rebuild_objects: bool) -> RemoteReport:
    report = RemoteReport()
    keys = view.keys()
    version = None
    if "mlx-remote.json" in keys:
        try:
            version = json.loads(view.read("mlx-remote.json"))["format"]
            if version not in (1, 2):
                report.problems.append("mlx-remote.json names another format")
        except (ValueError, KeyError, TypeError):
            report.problems.append("mlx-remote.json is unreadable")
    elif keys:
        report.problems.append("objects on the remote but no mlx-remote.json")
    by_table: dict[str, str] = {}  # pack id -> key, of packs whose bytes do not hash to it
    for key in keys:
        m = PACK_KEY.fullmatch(key)
        if m and m.group(2).startswith(m.group(1)):
            pack_id = m.group(2)
            if hashlib.sha256(view.read(key)).hexdigest() == pack_id:
                report.packs.add(pack_id)
            elif version == 1:  # format 1 writers name every pack by its bytes
                report.problems.append(f"pack {pack_id[:10]} does not hash to its name")
            else:
                by_table[pack_id] = key
    decoded = []
    for oid, read in _manifests(view, keys, report):
        try:
            decoded.append((oid, *decode_manifest(read(), oid)))
        except ValueError as exc:
            report.problems.append(f"manifest {oid[:10]} is invalid: {exc}")
    _check_table_ids(view, keys, by_table, [c for _, _, chunks in decoded for c in chunks], report)
    for oid, size, chunks in decoded:
        bad = [c.pack for c in chunks if c.pack not in report.packs or keys[pack_key(c.pack)] < c.offset + c.stored]
        if bad:
            report.problems.append(f"manifest {oid[:10]} names a missing or short pack {bad[0][:10]}")
            continue
        if rebuild_objects:
            try:
                got = rebuild(chunks, lambda pack, start, n: view.read(pack_key(pack), start, n))
            except ValueError as exc:
                report.problems.append(f"object {oid[:10]} cannot be rebuilt: {exc}")
                continue
            if got != oid:
                report.problems.append(f"object {oid[:10]} rebuilds to {got[:10]}")
                continue
        report.objects[oid] = size
    return report


def _check_table_ids(
    view: _DirView | _S3View, keys: dict[str, int], packs: dict[str, str], chunks: list, report: RemoteReport
) -> None:
    """Packs not named by the hash of their bytes must be named by their table id. The
    table is known where the manifests' chunks cover the whole pack, back to back; a pack
    they cover only in part (an interrupted push's, or one nothing names) cannot be checked
    by name, and each chunk read from it is still checked by its hash (`rebuild`)."""
    spans: dict[str, set[tuple[int, int]]] = {pack_id: set() for pack_id in packs}
    for c in chunks:
        if c.pack in spans:
            spans[c.pack].add((c.offset, c.stored))
    for pack_id, key in packs.items():
        ordered = sorted(spans[pack_id])
        ends = [0] + [offset + stored for offset, stored in ordered]
        back_to_back = all(o == e for (o, _), e in zip(ordered, ends[:-1], strict=True))
        whole = bool(ordered) and back_to_back and ends[-1] == keys[key]
        if whole:
            data = view.read(key)
            if pack_table_id(data[o : o + n] for o, n in ordered) != pack_id:
                report.problems.append(f"pack {pack_id[:10]} hashes to neither its name nor its table id")
                continue
        report.packs.add(pack_id)


def _manifests(view: _DirView | _S3View, keys: dict[str, int], report: RemoteReport):
    """(oid, reader of its manifest bytes) for each manifest key and each shard entry;
    a shard that breaks the format is a problem."""
    for key in keys:
        m = MANIFEST_KEY.fullmatch(key)
        if m and m.group(3)[:2] == m.group(1) and m.group(3)[2:4] == m.group(2):
            yield m.group(3), lambda key=key: view.read(key)
    for key in keys:
        m = SHARD_KEY.fullmatch(key)
        if not m:
            continue
        data = view.read(key)
        if hashlib.sha256(data).hexdigest() != m.group(1):
            report.problems.append(f"shard {m.group(1)[:10]} does not hash to its name")
            continue
        try:
            entries = decode_shard(data)
        except ValueError as exc:
            report.problems.append(f"shard {m.group(1)[:10]} is invalid: {exc}")
            continue
        for oid, _size, offset, length in entries:
            yield oid, lambda data=data, offset=offset, length=length: data[offset : offset + length]


def check_remote_dir(root: Path, rebuild_objects: bool = True) -> RemoteReport:
    """Every manifest under a valid name decodes, names packs that exist and are long
    enough, and (with `rebuild_objects`) rebuilds to bytes that hash to its name; every
    pack under a valid name hashes to its id, or is named by its table id (`_check_table_ids`)."""
    return _check(_DirView(root), rebuild_objects)


def check_remote_s3(client: object, bucket: str, prefix: str, rebuild_objects: bool = True) -> RemoteReport:
    return _check(_S3View(client, bucket, prefix), rebuild_objects)


# --- the work tree ------------------------------------------------------------------------


def classify(path: Path, sha: str, size: int) -> str:
    """'content' (exact bytes), 'pointer' (its own pointer text), 'absent', or 'wrong'."""
    if not path.exists() and not path.is_symlink():
        return "absent"
    if path.is_symlink() or not path.is_file():
        return "wrong"
    if path.stat().st_size == size and sha256_file(path) == sha:
        return "content"
    if path.stat().st_size < 1024 and parse_pointer(path.read_bytes()) == (sha, size):
        return "pointer"
    return "wrong"


# --- crash logs and fsck -------------------------------------------------------------------


def crash_log_dir(tmp: Path) -> Path:
    """Where gitmlx writes crash logs in a sealed environment (XDG_STATE_HOME is in its tmp)."""
    return tmp / "state" / "gitmlx" / "logs"


def take_crash_logs(tmp: Path) -> list[str]:
    """Read and remove the crash logs gitmlx wrote in the sealed environment whose TMPDIR is
    `tmp` (so a test can assert on them itself; the sealed fixture would otherwise fail at
    teardown)."""
    folder = crash_log_dir(tmp)
    logs = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.log")):
            logs.append(path.read_text(errors="replace"))
            path.unlink()
    return logs


def assert_no_crash_logs(tmp: Path) -> None:
    """No crash log under TMPDIR `tmp`. A bug inside a filter is answered with status=error
    and a crash log, not a traceback: a crash log means some path hit an unexpected exception."""
    logs = take_crash_logs(tmp)
    assert not logs, "gitmlx wrote crash logs (an internal error):\n" + "\n".join(logs)


_FSCK: list[bool] = []


def fsck_available(cwd: Path) -> bool:
    """Whether this gitmlx has `git mlx fsck` (another issue adds it)."""
    if not _FSCK:
        proc = subprocess.run(["git", "mlx", "fsck", "--help"], cwd=cwd, capture_output=True)
        _FSCK.append(proc.returncode == 0)
    return _FSCK[0]


def fsck_problems(repo: Path) -> list[str]:
    """`git mlx fsck` output when it exists and fails; [] when clean or not available."""
    if not fsck_available(repo):
        return []
    proc = subprocess.run(["git", "mlx", "fsck"], cwd=repo, capture_output=True, text=True)
    return [] if proc.returncode == 0 else [f"git mlx fsck exited {proc.returncode}: {proc.stderr.strip()}"]


def no_traceback(*texts: str) -> list[str]:
    return [t[:2000] for t in texts if "Traceback" in t]
