"""Repositories for the end-to-end tests, and the checks of what they hold, from the outside.

Owns: building a work repository with a bare git remote (its artifacts in the embedded
remote beside it), committing and cloning, reading what git stored (blobs, refs, trees),
reading and damaging the embedded remote as docs/storage-format.md describes it, and the
assertions the tests share about pointers, contents and a clean work tree.
Must not: import gitmlx: the pointer format and the remote layout are checked as a user or
another tool would see them (through tests/support/formats.py), so a bug in gitmlx's own
parser cannot hide itself here.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support import remote_layout
from tests.support.commands import Result, git, mlx
from tests.support.content import sha256_file, write_artifacts
from tests.support.formats import decode_manifest, manifest_key, pack_key, parse_pointer

HOOK_NAMES = ("pre-push", "post-checkout", "post-merge", "post-commit")


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


def add_commit(repo: Path, sizes: dict[str, int], seed: str = "", message: str = "artifacts") -> dict[str, str]:
    """Write one pseudo-random file per path and commit everything; returns path -> sha256."""
    shas = write_artifacts(repo, sizes, seed)
    commit_all(repo, message)
    return shas


def clone(remote: Path, dest: Path, env: Mapping[str, str] | None = None, check: bool = True) -> Result:
    return git("clone", "-q", remote, dest, cwd=dest.parent, env=env, check=check)


def git_common_dir(repo: Path) -> Path:
    out = git("rev-parse", "--git-common-dir", cwd=repo).stdout.strip()
    path = Path(out)
    return path if path.is_absolute() else (repo / path).resolve()


def local_store(repo: Path) -> Path:
    return git_common_dir(repo) / "mlx"


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


# --- the embedded remote beside a bare git remote (either format) ----------------------


def remote_store(bare: Path) -> Path:
    """The embedded default remote beside a bare git remote."""
    return bare / "mlx"


def manifest_path(bare: Path, oid: str) -> Path:
    """Where a format-1 key of `oid` lies (format 2 remotes keep manifests in shards:
    use `has_remote_manifest` to ask whether the remote has one at all)."""
    return remote_store(bare) / manifest_key(oid)


def has_remote_manifest(bare: Path, oid: str) -> bool:
    return remote_layout.has_manifest(remote_store(bare), oid)


def pack_path(bare: Path, pack_id: str) -> Path:
    return remote_store(bare) / pack_key(pack_id)


def remote_oids(bare: Path) -> set[str]:
    """Objects the embedded remote holds a manifest for (keys and shard entries)."""
    return remote_layout.manifest_oids(remote_store(bare))


def remote_files(bare: Path) -> dict[str, int]:
    """Every file on the embedded remote (relative path -> mtime_ns), temporary ones included."""
    root = remote_store(bare)
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def read_manifest(bare: Path, oid: str) -> list[tuple[str, int, int, int, int]]:
    """(pack id, offset, stored, raw, codec) per chunk of a valid manifest named `oid`."""
    try:
        _size, chunks = decode_manifest(remote_layout.read_manifest_bytes(remote_store(bare), oid), oid)
    except ValueError as exc:
        raise AssertionError(f"the manifest of {oid[:10]} on the remote is invalid: {exc}") from exc
    return [(c.pack, c.offset, c.stored, c.raw, c.codec) for c in chunks]


def assert_remote_object(bare: Path, oid: str) -> None:
    """The remote has a manifest for `oid` and every pack range it names."""
    assert has_remote_manifest(bare, oid), f"object {oid[:10]} is not on the remote beside {bare}"
    for pack_id, offset, stored, _raw, _codec in read_manifest(bare, oid):
        pack = pack_path(bare, pack_id)
        assert pack.is_file() and pack.stat().st_size >= offset + stored, f"pack {pack_id[:10]} is missing or short"


def corrupt_remote_object(bare: Path, oid: str, how: str = "flip") -> Path:
    """Damage an object on the embedded remote: 'flip' (its first stored chunk's bytes
    inverted in the pack, same size), 'truncate' (the pack cut inside that chunk), or
    'delete' (its manifest removed: its key, or its entry from its shard)."""
    assert has_remote_manifest(bare, oid), f"object {oid[:10]} is not on the remote"
    if how == "delete":
        remote_layout.delete_manifest(remote_store(bare), oid)
        return manifest_path(bare, oid)
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


# --- assertions --------------------------------------------------------------------------


def assert_pointer(repo: Path, path: str, spec: str | None = None) -> tuple[str, int]:
    """The work-tree file (or, with `spec` like 'HEAD' or '', the blob in git) is exactly a
    canonical gitmlx pointer; returns (oid, size)."""
    data = (repo / path).read_bytes() if spec is None else blob_at(repo, f"{spec}:{path}")
    parsed = parse_pointer(data)
    where = "work tree" if spec is None else f"git ({spec or 'index'})"
    assert parsed is not None, f"{path!r} in the {where} is not a gitmlx pointer: {data[:200]!r}"
    return parsed


def assert_clean_worktree(repo: Path) -> None:
    out = git("status", "--porcelain", "--untracked-files=all", cwd=repo).stdout
    assert out == "", f"git status is not clean in {repo}:\n{out}"


def assert_checkout_matches(repo: Path, rev: str, expected: dict[str, str]) -> None:
    """`git checkout REV` gives each path its expected sha256 content, and a clean status."""
    git("checkout", "-q", rev, cwd=repo)
    for path, sha in expected.items():
        assert_content(repo, path, sha)
    assert_clean_worktree(repo)


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


def settle_index(repo: Path, paths: Iterable[str]) -> None:
    """Make the index entries of `paths` not racily clean (git's racy-git rule: a file
    modified in the same second the index was written is hashed again by the next git
    command, through the clean filter, which stores its content again). The files' times
    go 10 s back and `git status` refreshes the index once, now, instead of later."""
    past = time.time() - 10
    for path in paths:
        os.utime(repo / path, (past, past))
    git("status", "--porcelain", cwd=repo)
