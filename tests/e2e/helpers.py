"""Helpers for the end-to-end tests: run the real `git` (which spawns the real `git-mlx`),
build repositories, and check the guarantees of CONTRACT §6 from the outside.

Owns: everything the e2e tests share except fixtures (conftest.py). Deliberately does not
import gitmlx: the pointer format and store layout are checked as a user or another tool
would see them on disk, so a bug in gitmlx's own parser cannot hide itself here.
"""

from __future__ import annotations

import hashlib
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
    return store / "objects" / oid[0:2] / oid[2:4] / oid


def stored_oids(store: Path) -> set[str]:
    """Oids under valid names in a store or embedded remote (shards checked)."""
    objects = store / "objects"
    if not objects.is_dir():
        return set()
    found = set()
    for path in objects.glob("*/*/*"):
        name = path.name
        if (
            re.fullmatch(r"[0-9a-f]{64}", name)
            and path.parent.name == name[2:4]
            and path.parent.parent.name == name[:2]
        ):
            found.add(name)
    return found


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


def assert_local_object(repo: Path, oid: str, size: int | None = None) -> Path:
    """The object is in the repo's local store under its sharded name and hashes to it."""
    path = object_path(local_store(repo), oid)
    assert path.is_file(), f"object {oid[:10]} is not in the local store of {repo}"
    if size is not None:
        assert path.stat().st_size == size
    assert sha256_file(path) == oid, f"local object {oid[:10]} does not hash to its name"
    return path


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


def remove_local_object(repo: Path, oid: str) -> None:
    path = object_path(local_store(repo), oid)
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    path.unlink()


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
