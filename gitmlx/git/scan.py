"""Finding pointers in git: in a tree, in the index, or in a range of history.

Owns: listing blobs small enough to be pointers and parsing them, with a constant number
of git processes (rev-list / ls-tree / ls-files, then cat-file in batch mode) whatever
the number of files.
Must not: read content bigger than a pointer, or touch the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitmlx import pointer as pointers
from gitmlx.errors import MlxError
from gitmlx.git.plumbing import run_git
from gitmlx.pointer import MAX_POINTER_SIZE, Pointer


@dataclass(frozen=True)
class TrackedFile:
    """A path whose blob is a pointer."""

    path: str
    pointer: Pointer
    mode: str = "100644"


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _sizes(cwd: Path, shas: Sequence[str]) -> dict[str, int]:
    """Blob sizes via one `cat-file --batch-check`."""
    if not shas:
        return {}
    out = run_git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
        cwd=cwd,
        input="\n".join(shas).encode() + b"\n",
    )
    sizes = {}
    for line in out.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] == "blob":
            sizes[parts[0]] = int(parts[2])
    return sizes


def read_pointers(cwd: Path, shas: Iterable[str]) -> dict[str, Pointer]:
    """Parse the given (small) blobs via one `cat-file --batch`; non-pointers are omitted."""
    unique = list(dict.fromkeys(shas))
    if not unique:
        return {}
    out = run_git(["cat-file", "--batch"], cwd=cwd, input="\n".join(unique).encode() + b"\n")
    found: dict[str, Pointer] = {}
    pos = 0
    while pos < len(out):
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3:  # "<sha> missing"
            continue
        size = int(header[2])
        body = out[pos : pos + size]
        pos += size + 1
        parsed = pointers.parse(body)
        if parsed is not None:
            found[_decode(header[0])] = parsed
    return found


def _collect(cwd: Path, entries: list[tuple[str, str, str]], sizes: dict[str, int]) -> list[TrackedFile]:
    small = [sha for _, sha, _ in entries if sizes.get(sha, MAX_POINTER_SIZE) < MAX_POINTER_SIZE]
    parsed = read_pointers(cwd, small)
    return [TrackedFile(path, parsed[sha], mode) for mode, sha, path in entries if sha in parsed]


def pointers_in_tree(cwd: Path, rev: str = "HEAD", paths: Sequence[str] = ()) -> list[TrackedFile]:
    """Pointer files in the tree of `rev` (empty when `rev` does not exist yet)."""
    out = run_git(["ls-tree", "-r", "-l", "-z", "--full-tree", rev, "--", *paths], cwd=cwd, check=False)
    entries, sizes = [], {}
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, sha, size = meta.decode().split()
        if kind == "blob" and mode != "120000" and size != "-":
            entries.append((mode, sha, _decode(path)))
            sizes[sha] = int(size)
    return _collect(cwd, entries, sizes)


def pointers_in_index(cwd: Path, paths: Sequence[str] = ()) -> list[TrackedFile]:
    """Pointer files staged in the index (stage 0 only); `paths` are literal, not globs."""
    out = run_git(["ls-files", "-s", "-z", "--", *(f":(literal,top){p}" for p in paths)], cwd=cwd)
    entries = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, sha, stage = meta.decode().split()
        if stage == "0" and mode != "120000" and mode != "160000":
            entries.append((mode, sha, _decode(path)))
    return _collect(cwd, entries, _sizes(cwd, [sha for _, sha, _ in entries]))


def pointers_in_range(cwd: Path, include: Sequence[str], exclude: Sequence[str] = ()) -> list[TrackedFile]:
    """Pointers in blobs that the commits `include` reach and `exclude` do not.

    `exclude` items are passed after `--not`, so they may be revs or `--remotes=NAME`.
    A blob seen under several paths is reported once, with one of them.
    """
    if not include:
        return []
    out = run_git(["rev-list", "--objects", *include, "--not", *exclude], cwd=cwd)
    entries = []
    for line in out.split(b"\n"):
        sha, sep, path = line.partition(b" ")
        if sep and path:
            entries.append(("100644", sha.decode(), _decode(path)))
    return _collect(cwd, entries, _sizes(cwd, [sha for _, sha, _ in entries]))


@dataclass(frozen=True)
class BlobAt:
    """What `REV:PATH` names: a blob id, its size, and its pointer when it is one."""

    sha: str
    size: int
    pointer: Pointer | None


def blob_at(cwd: Path, rev: str, path: str) -> BlobAt | None:
    """The blob at `path` in the tree of `rev`; None when either does not exist.

    Raises MlxError when `path` names a directory or a submodule there.
    """
    spec = f"{rev}:{path}"
    out = run_git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"],
        cwd=cwd,
        input=spec.encode("utf-8", "surrogateescape") + b"\n",
    )
    parts = out.decode("utf-8", "surrogateescape").rstrip("\n").rsplit(" ", 2)
    if len(parts) != 3 or parts[2] in ("missing", "ambiguous") or not parts[2].isdigit():
        return None
    sha, kind, size = parts[0], parts[1], int(parts[2])
    if kind != "blob":
        what = {"tree": "a directory", "commit": "a submodule"}.get(kind, f"a {kind}")
        raise MlxError(f"'{path}' at '{rev}' is {what}, not a file", "name a file in the repository")
    pointer = read_pointers(cwd, [sha]).get(sha) if size < MAX_POINTER_SIZE else None
    return BlobAt(sha, size, pointer)
