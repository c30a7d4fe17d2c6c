"""Helpers for the end-to-end tests: run the real `git` (which spawns the real `git-mlx`),
build repositories, and check the guarantees of CONTRACT §6 from the outside.

Owns: everything the e2e tests share except fixtures (conftest.py). Deliberately does not
import gitmlx: the pointer format and store layout are checked as a user or another tool
would see them on disk, so a bug in gitmlx's own parser cannot hide itself here.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import os
import random
import re
import stat
import struct
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MLX_VERSION = "https://gitmlx.dev/spec/v1"
POINTER_RE = re.compile(rb"version https://gitmlx\.dev/spec/v1\noid sha256:([0-9a-f]{64})\nsize (0|[1-9][0-9]*)\n")
BLOCK = 1024 * 1024
HOOK_NAMES = ("pre-push", "post-checkout", "post-merge", "post-commit")


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return f"$ {' '.join(self.args)}\n[exit {self.returncode}]\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def run(
    args: Sequence[str | os.PathLike[str]],
    cwd: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
    timeout: float = 600,
) -> Result:
    """Run a command; with `check`, fail the test (showing both streams) on a non-zero exit."""
    full_env = None
    if env is not None:
        full_env = dict(os.environ)
        full_env.update(env)
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        timeout=timeout,
    )
    result = Result(
        tuple(str(a) for a in args),
        proc.returncode,
        proc.stdout.decode("utf-8", "surrogateescape"),
        proc.stderr.decode("utf-8", "surrogateescape"),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"command failed:\n{result}")
    return result


def git(*args: str | os.PathLike[str], cwd: Path | str, **kwargs) -> Result:
    return run(["git", *args], cwd, **kwargs)


def mlx(*args: str | os.PathLike[str], cwd: Path | str, **kwargs) -> Result:
    """`git mlx ARGS`: through git, as a user types it."""
    return run(["git", "mlx", *args], cwd, **kwargs)


def assert_no_traceback(*results: Result) -> None:
    for result in results:
        assert "Traceback" not in result.output, f"python traceback printed:\n{result}"


# --- content -------------------------------------------------------------------------


def write_random(path: Path, size: int, seed: int | str) -> str:
    """Write `size` pseudo-random bytes (streamed, never all in memory); return their sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(str(seed))
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = rng.randbytes(min(left, BLOCK))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def git_blob_hash(path: Path) -> str:
    """The id git would give the file's raw bytes as a blob (sha1 of 'blob N\\0' + bytes)."""
    digest = hashlib.sha1()
    digest.update(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def pointer_text(oid: str, size: int, version: str = MLX_VERSION) -> bytes:
    return f"version {version}\noid sha256:{oid}\nsize {size}\n".encode()


def parse_pointer(data: bytes) -> tuple[str, int] | None:
    match = POINTER_RE.fullmatch(data)
    return (match.group(1).decode(), int(match.group(2))) if match else None


# --- repositories ----------------------------------------------------------------------


@dataclass(frozen=True)
class Repos:
    work: Path
    remote: Path  # a bare repository; its artifacts live in `remote/mlx`


def make_repo_with_bare_remote(root: Path, patterns: Iterable[str] = ("*.bin",), name: str = "work") -> Repos:
    """A bare `remote.git` and a clone-like `work` repo with origin set, hooks installed,
    the patterns tracked and `.gitattributes` committed (not pushed)."""
    remote = root / "remote.git"
    work = root / name
    git("init", "-q", "--bare", remote, cwd=root)
    git("init", "-q", work, cwd=root)
    git("remote", "add", "origin", remote, cwd=work)
    mlx("install", cwd=work)  # as a user would: global filters (already set) and the hooks
    patterns = list(patterns)
    if patterns:
        mlx("track", *patterns, cwd=work)
        git("add", ".gitattributes", cwd=work)
        git("commit", "-q", "-m", "track artifacts", cwd=work)
    return Repos(work, remote)


def commit_all(repo: Path, message: str = "update") -> None:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)


def clone(remote: Path, dest: Path, env: Mapping[str, str] | None = None, check: bool = True) -> Result:
    return git("clone", "-q", remote, dest, cwd=dest.parent, env=env, check=check)


def git_common_dir(repo: Path) -> Path:
    out = git("rev-parse", "--git-common-dir", cwd=repo).stdout.strip()
    path = Path(out)
    return path if path.is_absolute() else (repo / path).resolve()


def local_store(repo: Path) -> Path:
    return git_common_dir(repo) / "mlx"


def remote_store(bare: Path) -> Path:
    """The embedded default remote beside a bare git remote."""
    return bare / "mlx"


# The remote is read from the outside, as docs/storage-format.md describes it (format 1):
# manifests/<oid[0:2]>/<oid[2:4]>/<oid> and packs/<id[0:2]>/<id>.pack.
_MANIFEST_HEADER = struct.Struct("<8s32sQII")
_CHUNK_RECORD = struct.Struct("<32sIQIIB")


def manifest_path(bare: Path, oid: str) -> Path:
    return remote_store(bare) / "manifests" / oid[0:2] / oid[2:4] / oid


def remote_oids(bare: Path) -> set[str]:
    """Objects the embedded remote holds: the names of its manifests."""
    root = remote_store(bare) / "manifests"
    if not root.is_dir():
        return set()
    return {p.name for p in root.glob("*/*/*") if re.fullmatch(r"[0-9a-f]{64}", p.name)}


def remote_files(bare: Path) -> dict[str, int]:
    """Every file on the embedded remote (relative path -> mtime_ns), temporary ones included."""
    root = remote_store(bare)
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def read_manifest(bare: Path, oid: str) -> list[tuple[str, int, int, int, int]]:
    """(pack id, offset, stored, raw, codec) per chunk, checking the header names `oid`."""
    data = manifest_path(bare, oid).read_bytes()
    body = data[:-32]
    assert hashlib.sha256(body).digest() == data[-32:], "manifest checksum"
    magic, raw_oid, _size, packs, chunks = _MANIFEST_HEADER.unpack_from(body)
    assert magic == b"MLXMAN01" and raw_oid.hex() == oid
    ids = [body[56 + 32 * i : 56 + 32 * (i + 1)].hex() for i in range(packs)]
    out = []
    for i in range(chunks):
        _h, index, offset, stored, raw, codec = _CHUNK_RECORD.unpack_from(body, 56 + 32 * packs + 53 * i)
        out.append((ids[index], offset, stored, raw, codec))
    return out


def pack_path(bare: Path, pack_id: str) -> Path:
    return remote_store(bare) / "packs" / pack_id[:2] / f"{pack_id}.pack"


def object_path(store: Path, oid: str) -> Path:
    """Where a *loose* object lives (in a local store; the same layout as Git LFS's)."""
    return store / "objects" / oid[0:2] / oid[2:4] / oid


# The local store is read from the outside too, as docs/local-store.md ("Layout", "Store
# packs") describes it: loose objects at objects/<oid[0:2]>/<oid[2:4]>/<oid>, and objects
# under 2 MiB in store packs packs/<40 hex>.mlxpack (big-endian):
#   header  "MLXSPACK", u32 version = 1, u32 reserved = 0
#   objects the bytes of each object
#   index   count entries of 48 bytes sorted by raw oid: 32-byte oid, u64 offset, u64 size
#   trailer u64 index offset, u64 count, 32-byte sha256(index), "MLXSIDX1"
# An object may be loose, packed, or both (either copy must be good).
SMALL_OBJECT_LIMIT = 2 * BLOCK  # objects below this size go into store packs
STORE_PACK_MAGIC = b"MLXSPACK"
STORE_PACK_VERSION = 1
STORE_PACK_TRAILER_MAGIC = b"MLXSIDX1"
STORE_PACK_SUFFIX = ".mlxpack"
_STORE_PACK_HEADER = struct.Struct(">8sII")
_STORE_PACK_ENTRY = struct.Struct(">32sQQ")
_STORE_PACK_TRAILER = struct.Struct(">QQ32s8s")
_STORE_PACK_NAME = re.compile(r"[0-9a-f]{40}\.mlxpack")
_OID = re.compile(r"[0-9a-f]{64}")
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


@dataclass(frozen=True)
class ObjectLocation:
    """Where one copy of an object's bytes is: a loose file (offset 0, the whole file) or
    the range [offset, offset + size) of a store pack."""

    path: Path
    offset: int
    size: int
    packed: bool

    def read(self) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.size)
        assert len(data) == self.size, f"{self} is cut short"
        return data

    def sha256(self) -> str:
        """The sha256 of these bytes (streamed)."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            left = self.size
            while left:
                block = f.read(min(left, BLOCK))
                assert block, f"{self} is cut short"
                digest.update(block)
                left -= len(block)
        return digest.hexdigest()

    def __str__(self) -> str:
        if self.packed:
            return f"store pack {self.path.name} [{self.offset}, +{self.size}]"
        return f"loose file {self.path}"


def as_store(repo_or_store: Path) -> Path:
    """A work tree (it has `.git`) -> its local store; anything else is taken as a store."""
    repo_or_store = Path(repo_or_store)
    return local_store(repo_or_store) if (repo_or_store / ".git").exists() else repo_or_store


def read_store_pack(path: Path) -> dict[str, tuple[int, int]]:
    """oid -> (offset, size) for every object of a store pack, after checking everything the
    format lets a reader check: the name, both magics, the version, the reserved word, that
    index + trailer end the file, the index digest (and that the name is its first 40 hex
    digits), entries sorted and unique, each range inside the object area, no two ranges
    overlapping, each object under 2 MiB, and the file read-only. gitmlx renames only
    finished packs into `packs/`, so any failure is a bug (or damage a test did)."""
    assert _STORE_PACK_NAME.fullmatch(path.name), f"{path} is named like no store pack"
    mode = path.stat().st_mode
    assert not mode & _WRITE_BITS, f"store pack {path.name} is writable (mode {oct(mode & 0o777)})"
    data = path.read_bytes()
    low = _STORE_PACK_HEADER.size + _STORE_PACK_TRAILER.size
    assert len(data) >= low, f"store pack {path.name} is {len(data)} bytes, shorter than header + trailer"
    magic, version, reserved = _STORE_PACK_HEADER.unpack_from(data, 0)
    assert magic == STORE_PACK_MAGIC, f"store pack {path.name}: header magic {magic!r}"
    assert version == STORE_PACK_VERSION, f"store pack {path.name}: version {version}"
    assert reserved == 0, f"store pack {path.name}: reserved word {reserved}"
    index_offset, count, digest, end = _STORE_PACK_TRAILER.unpack_from(data, len(data) - _STORE_PACK_TRAILER.size)
    assert end == STORE_PACK_TRAILER_MAGIC, f"store pack {path.name}: trailer magic {end!r}"
    assert index_offset >= _STORE_PACK_HEADER.size, f"store pack {path.name}: index offset {index_offset}"
    assert index_offset + _STORE_PACK_ENTRY.size * count + _STORE_PACK_TRAILER.size == len(data), (
        f"store pack {path.name}: index at {index_offset} with {count} entries does not end a {len(data)}-byte file"
    )
    index = data[index_offset : index_offset + _STORE_PACK_ENTRY.size * count]
    assert hashlib.sha256(index).digest() == digest, f"store pack {path.name}: the index does not hash to its digest"
    assert path.name == digest.hex()[:40] + STORE_PACK_SUFFIX, f"store pack {path.name} is not named by its digest"
    entries: dict[str, tuple[int, int]] = {}
    previous = b""
    for i in range(count):
        raw, offset, size = _STORE_PACK_ENTRY.unpack_from(index, i * _STORE_PACK_ENTRY.size)
        assert raw > previous, f"store pack {path.name}: index entry {i} is out of order or repeated"
        previous = raw
        assert _STORE_PACK_HEADER.size <= offset and offset + size <= index_offset, (
            f"store pack {path.name}: object {raw.hex()[:10]} at [{offset}, +{size}] is outside the object area"
        )
        assert size < SMALL_OBJECT_LIMIT, f"store pack {path.name}: object {raw.hex()[:10]} of {size} bytes"
        entries[raw.hex()] = (offset, size)
    ranges = sorted((offset, offset + size) for offset, size in entries.values() if size)
    for (_, end_a), (start_b, _) in itertools.pairwise(ranges):
        assert end_a <= start_b, f"store pack {path.name}: two objects overlap at {start_b}"
    return entries


def store_packs(repo_or_store: Path) -> dict[Path, dict[str, tuple[int, int]]]:
    """Every store pack (validated, see `read_store_pack`) -> its objects."""
    packs = as_store(repo_or_store) / "packs"
    if not packs.is_dir():
        return {}
    return {p: read_store_pack(p) for p in sorted(packs.glob(f"*{STORE_PACK_SUFFIX}")) if p.is_file()}


def loose_oids(repo_or_store: Path) -> set[str]:
    """Oids of loose objects under valid names (shards checked)."""
    objects = as_store(repo_or_store) / "objects"
    if not objects.is_dir():
        return set()
    found = set()
    for path in objects.glob("*/*/*"):
        name = path.name
        if _OID.fullmatch(name) and path.parent.name == name[2:4] and path.parent.parent.name == name[:2]:
            found.add(name)
    return found


def packed_oids(repo_or_store: Path) -> set[str]:
    return {oid for entries in store_packs(repo_or_store).values() for oid in entries}


def stored_oids(repo_or_store: Path) -> set[str]:
    """Oids the local store holds, loose or packed."""
    return loose_oids(repo_or_store) | packed_oids(repo_or_store)


def local_object_locations(repo_or_store: Path, oid: str) -> list[ObjectLocation]:
    """Every copy of the object in the store: its loose file first, then each pack."""
    assert _OID.fullmatch(oid), f"not an oid: {oid!r}"
    store = as_store(repo_or_store)
    found = []
    loose = object_path(store, oid)
    if loose.is_file():
        found.append(ObjectLocation(loose, 0, loose.stat().st_size, packed=False))
    for pack, entries in store_packs(store).items():
        if oid in entries:
            offset, size = entries[oid]
            found.append(ObjectLocation(pack, offset, size, packed=True))
    return found


def local_object_location(repo_or_store: Path, oid: str) -> ObjectLocation | None:
    """Where the object's bytes are (the loose copy if there is one), or None."""
    found = local_object_locations(repo_or_store, oid)
    return found[0] if found else None


def has_local_object(repo_or_store: Path, oid: str) -> bool:
    return local_object_location(repo_or_store, oid) is not None


def object_layout(repo_or_store: Path, oid: str) -> str:
    """The kind of each copy, loose first, joined by '+': 'loose', 'packed', 'loose+packed'
    (and so on); 'absent' when the store has none."""
    kinds = ["packed" if where.packed else "loose" for where in local_object_locations(repo_or_store, oid)]
    return "+".join(kinds) or "absent"


def commit_with_layout(repo: Path, path: str, layout: str, message: str = "update") -> None:
    """Commit every change with `path`'s (small) object stored as `layout`: 'packed' (added
    with the rest, so one process stores them all in a store pack) or 'loose' (added on its
    own first: a process that stores just one object writes it loose)."""
    if layout == "loose":
        git("add", "--", path, cwd=repo)
    elif layout != "packed":
        raise ValueError(layout)
    commit_all(repo, message)


def local_object_bytes(repo_or_store: Path, oid: str) -> bytes:
    where = local_object_location(repo_or_store, oid)
    assert where is not None, f"object {oid[:10]} is not in the local store {as_store(repo_or_store)}"
    return where.read()


def hooks_dir(repo: Path) -> Path:
    return git_common_dir(repo) / "hooks"


def tracked_files(repo: Path, rev: str = "HEAD") -> list[str]:
    out = git("ls-tree", "-r", "-z", "--name-only", rev, cwd=repo).stdout
    return [p for p in out.split("\0") if p]


def blob_at(repo: Path, spec: str) -> bytes:
    """Raw bytes of a blob (`REV:PATH` or `:PATH`), no filters."""
    proc = subprocess.run(["git", "cat-file", "blob", spec], cwd=repo, capture_output=True, check=True)
    return proc.stdout


def all_blobs(repo: Path) -> dict[str, int]:
    """Every blob in the object database (loose or packed): id -> size."""
    out = git("cat-file", "--batch-all-objects", "--batch-check", cwd=repo).stdout
    blobs = {}
    for line in out.splitlines():
        sha, kind, size = line.split()
        if kind == "blob":
            blobs[sha] = int(size)
    return blobs


def remote_ref(bare: Path, ref: str = "refs/heads/main") -> str | None:
    result = git("rev-parse", "-q", "--verify", ref, cwd=bare, check=False)
    return result.stdout.strip() or None


# --- assertions ------------------------------------------------------------------------


def assert_pointer(repo: Path, path: str, spec: str | None = None) -> tuple[str, int]:
    """The work-tree file (or, with `spec` like 'HEAD' or '', the blob in git) is exactly a
    canonical gitmlx pointer; returns (oid, size)."""
    data = (repo / path).read_bytes() if spec is None else blob_at(repo, f"{spec}:{path}")
    parsed = parse_pointer(data)
    where = "work tree" if spec is None else f"git ({spec or 'index'})"
    assert parsed is not None, f"{path!r} in the {where} is not a gitmlx pointer: {data[:200]!r}"
    return parsed


def assert_local_object(repo: Path, oid: str, size: int | None = None) -> ObjectLocation:
    """The object is in the repo's local store (loose under its sharded name, or in a store
    pack) and every copy of it hashes to it; returns where its bytes are (the loose copy
    first). A loose object must be read-only; a packed one must be under 2 MiB."""
    copies = local_object_locations(repo, oid)
    assert copies, f"object {oid[:10]} is not in the local store of {repo}"
    for where in copies:
        if size is not None:
            assert where.size == size, f"local object {oid[:10]} has {where.size} bytes, not {size} ({where})"
        if not where.packed:
            mode = where.path.stat().st_mode
            assert not mode & _WRITE_BITS, f"loose object {oid[:10]} is writable (mode {oct(mode & 0o777)})"
        assert where.sha256() == oid, f"local object {oid[:10]} does not hash to its name ({where})"
    return copies[0]


def assert_remote_object(bare: Path, oid: str) -> Path:
    """The remote has a manifest for `oid` and every pack range it names."""
    path = manifest_path(bare, oid)
    assert path.is_file(), f"object {oid[:10]} is not on the remote beside {bare}"
    for pack_id, offset, stored, _raw, _codec in read_manifest(bare, oid):
        pack = pack_path(bare, pack_id)
        assert pack.is_file() and pack.stat().st_size >= offset + stored, f"pack {pack_id[:10]} is missing or short"
    return path


def assert_clean_worktree(repo: Path) -> None:
    out = git("status", "--porcelain", "--untracked-files=all", cwd=repo).stdout
    assert out == "", f"git status is not clean in {repo}:\n{out}"


def assert_content(repo: Path, path: str, sha256: str) -> None:
    file = repo / path
    assert file.is_file(), f"{path!r} is missing from {repo}"
    assert sha256_file(file) == sha256, f"{path!r} does not have the expected content"


def assert_no_big_blobs(repo: Path, limit: int = 1024, forbidden: Iterable[str] = ()) -> None:
    """Guarantee 1: no blob larger than `limit`, and none with a forbidden (content) id."""
    blobs = all_blobs(repo)
    big = {sha: size for sha, size in blobs.items() if size > limit}
    assert not big, f"blobs over {limit} bytes in {repo}: {big}"
    leaked = set(forbidden) & set(blobs)
    assert not leaked, f"artifact content stored as git blobs in {repo}: {leaked}"


def corrupt_remote_object(bare: Path, oid: str, how: str = "flip") -> Path:
    """Damage an object on the embedded remote: 'flip' (its first stored chunk's bytes
    inverted in the pack, same size), 'truncate' (the pack cut inside that chunk), or
    'delete' (its manifest removed)."""
    manifest = manifest_path(bare, oid)
    assert manifest.is_file(), f"object {oid[:10]} is not on the remote"
    if how == "delete":
        manifest.unlink()
        return manifest
    pack_id, offset, stored, _raw, _codec = read_manifest(bare, oid)[0]
    path = pack_path(bare, pack_id)
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    if how == "truncate":
        os.truncate(path, offset + stored // 2)
    elif how == "flip":
        with open(path, "r+b") as f:
            f.seek(offset)
            head = f.read(min(stored, 64))
            f.seek(offset)
            f.write(bytes(b ^ 0xFF for b in head))
    else:
        raise ValueError(how)
    return path


def corrupt_local_object(repo: Path, oid: str, how: str = "flip") -> list[ObjectLocation]:
    """Damage every copy of an object in the local store, in place (so no good copy is
    left to read instead); returns the copies. 'flip' inverts the first (up to) 16 bytes,
    keeping the size; 'truncate' cuts a loose file to half its size. A packed object's
    range cannot be cut without damaging the pack's index and every other object, so for
    it 'truncate' flips too: what the damage must exercise, bytes that no longer hash to
    the oid under a valid name, is the same. The pack is made writable for the write and
    read-only (0444) again after; its index (and so its name) stays valid."""
    if how not in ("flip", "truncate"):
        raise ValueError(how)
    copies = local_object_locations(repo, oid)
    assert copies, f"object {oid[:10]} is not in the local store of {repo}"
    for where in copies:
        assert where.size > 0, "an empty object has no byte to damage"
        mode = stat.S_IMODE(where.path.stat().st_mode)
        where.path.chmod(mode | stat.S_IWUSR)
        try:
            if how == "truncate" and not where.packed:
                os.truncate(where.path, where.size // 2)
            else:
                with open(where.path, "r+b") as f:
                    f.seek(where.offset)
                    head = f.read(min(where.size, 16))
                    f.seek(where.offset)
                    f.write(bytes(b ^ 0xFF for b in head))
        finally:
            where.path.chmod(mode)
    return copies


def _write_store_pack(packs: Path, objects: Mapping[str, bytes]) -> Path:
    """A store pack holding `objects` written as the format describes (object bytes back
    to back), renamed into `packs/` under its name, read-only."""
    body = bytearray(_STORE_PACK_HEADER.pack(STORE_PACK_MAGIC, STORE_PACK_VERSION, 0))
    entries = []
    for oid, data in objects.items():
        entries.append((bytes.fromhex(oid), len(body), len(data)))
        body += data
    index = b"".join(_STORE_PACK_ENTRY.pack(*entry) for entry in sorted(entries))
    digest = hashlib.sha256(index).digest()
    trailer = _STORE_PACK_TRAILER.pack(len(body), len(entries), digest, STORE_PACK_TRAILER_MAGIC)
    tmp = packs / f".e2e-{os.getpid()}-{random.getrandbits(64):016x}"  # no pack name: readers skip it
    tmp.write_bytes(bytes(body) + index + trailer)
    tmp.chmod(0o444)
    final = packs / f"{digest.hex()[:40]}{STORE_PACK_SUFFIX}"
    os.replace(tmp, final)
    return final


def remove_local_object(repo: Path, oid: str) -> None:
    """Remove every copy of an object from the local store: its loose file, and each store
    pack holding it is rewritten without it (as prune does: under an exclusive flock of
    `packs/.lock`, the new pack renamed into place before the old one is deleted)."""
    store = as_store(repo)
    copies = local_object_locations(store, oid)
    assert copies, f"object {oid[:10]} is not in the local store of {repo}"
    loose = object_path(store, oid)
    if loose.is_file():
        loose.chmod(stat.S_IRUSR | stat.S_IWUSR)
        loose.unlink()
    if not any(where.packed for where in copies):
        return
    packs = store / "packs"
    with open(packs / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for pack, entries in store_packs(store).items():
            if oid not in entries:
                continue
            keep = {}
            for other, (offset, size) in entries.items():
                if other != oid:
                    keep[other] = ObjectLocation(pack, offset, size, packed=True).read()
            if keep:
                assert _write_store_pack(packs, keep) != pack
            pack.unlink()
    assert not has_local_object(store, oid)


def snapshot(root: Path) -> set[Path]:
    """Every file and folder under `root` (to prove nothing was written where it must not be)."""
    return {Path(dirpath) / name for dirpath, dirs, files in os.walk(root) for name in (*dirs, *files)}


def count_filter_starts(trace_file: Path) -> dict[str, int]:
    """How many times git started each gitmlx filter, from a GIT_TRACE log."""
    counts = {"filter-process": 0, "clean": 0, "smudge": 0}
    text = trace_file.read_text(errors="replace") if trace_file.exists() else ""
    for line in text.splitlines():
        if "run_command:" not in line or "git-mlx" not in line:
            continue
        for name in counts:
            if re.search(rf"git-mlx {name}\b", line):
                counts[name] += 1
    return counts
