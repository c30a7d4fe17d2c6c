"""The public Python API: artifacts at any revision, without a checkout (docs/python-api.md).

    import gitmlx
    with gitmlx.open("models/model.safetensors", rev="v1", repo="path/or/url") as f:
        header = f.read(8)
    path = gitmlx.fetch_path("data/train.parquet", rev="main")
    tensors = gitmlx.load_tensors("models/model.safetensors", ["lm_head.weight"], rev="v1")

Owns: turning (path, rev, repo, remote) into bytes: the pointer blob at `rev:path` (read
with git, never from the work tree), the local store when it holds the object, else the
artifact remote, read lazily chunk by chunk (gitmlx.api.lazy). `repo` is a checkout, or a URL
(or bare repository) that is mirrored under the cache (gitmlx.api.mirror).
Must not: import click, tqdm or (until an S3 remote is read) boto3; print; or write
anything but the local store and mirrors. See docs/python-api.md.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO

from gitmlx.api import mirror
from gitmlx.api.reader import ArtifactFile, FileSource
from gitmlx.context import RepoContext
from gitmlx.errors import IntegrityError, MlxError
from gitmlx.format.pointer import Pointer
from gitmlx.format.sizes import human_size
from gitmlx.git import plumbing, scan
from gitmlx.remotes import by_url as remotes
from gitmlx.remotes.base import Remote

if TYPE_CHECKING:
    import numpy

__all__ = ["ArtifactFile", "fetch_path", "load_tensors", "open", "read_range"]

#: Plain git content served by `open` stays in memory up to this size, then spills to disk.
SPOOL_IN_MEMORY = 8 * 1024 * 1024

StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class Target:
    """One path at one revision, located: its repository and what git holds there."""

    ctx: RepoContext
    path: str
    rev: str
    blob: scan.BlobAt
    where: str  # "'path' at 'rev'" (and the repository when it is a URL), for messages

    @property
    def pointer(self) -> Pointer | None:
        return self.blob.pointer

    @property
    def label(self) -> str:
        p = self.blob.pointer
        return f"{self.where} (object {p.short_oid}, {human_size(p.size)})" if p else self.where


def open(  # shadows the builtin on purpose: gitmlx.open(...) reads like open(...)
    path: StrPath,
    rev: str = "HEAD",
    repo: StrPath = ".",
    *,
    remote: str | None = None,
    mode: str = "rb",
) -> ArtifactFile:
    """Open `path` as it is in revision `rev` of `repo`: a seekable, read-only binary file.

    `path` is relative to the top of the repository. `repo` is a checkout (any directory
    in it), or a clone URL or bare repository, mirrored under the cache. Bytes come from
    the local store when it holds the object, else lazily from the artifact remote (`remote`:
    an artifact remote URL or a git remote's name; default: the repository's own): a read
    fetches only the chunks covering it, each verified against its sha256 first. Reading
    the file through from the start also checks the whole object's sha256 before the last
    bytes are returned (IntegrityError). A path whose content is not a pointer (plain git
    content) is served as it is.

    Raises MlxError (a missing path or revision, no remote configured), ObjectNotFound
    (the remote lacks the object), IntegrityError (bytes that fail verification).
    """
    if mode != "rb":
        raise ValueError(f"gitmlx.open supports only mode 'rb', not {mode!r}")
    return open_target(locate(path, rev, repo), remote)


def read_range(
    path: StrPath, start: int, length: int, rev: str = "HEAD", repo: StrPath = ".", *, remote: str | None = None
) -> bytes:
    """Bytes `start` to `start + length` of `path` at `rev` (fewer only past the end),
    fetching only the chunks that cover them when the object is not in the local store."""
    if start < 0 or length < 0:
        raise ValueError(f"invalid range: start {start}, length {length}")
    with open(path, rev, repo, remote=remote) as f:
        f.seek(start)
        return f.read(length)


def fetch_path(path: StrPath, rev: str = "HEAD", repo: StrPath = ".", *, remote: str | None = None) -> Path:
    """A local, read-only file holding `path` as it is at `rev`, for libraries that want a path.

    Downloads the whole object into the local store if it is not there (verified before it
    is named) and returns the store's own file: no copy, and read-only (mode 0444). Do
    not modify or delete it; `git mlx prune` may remove it once no recent ref needs it.
    Plain git content is put in the store the same way.
    """
    target = locate(path, rev, repo)
    store = target.ctx.store
    pointer = target.pointer
    if pointer is None:
        with store.writer() as writer:
            plumbing.stream_git(["cat-file", "blob", target.blob.sha], writer, cwd=target.ctx.top)
            return store.file_path(writer.commit().oid)
    if store.has(pointer.oid):
        _check_local_size(store.size(pointer.oid), target)
        return store.file_path(pointer.oid)
    from gitmlx.transfer.download import fetch_one

    try:
        fetch_one(store, open_remote(target, remote), pointer)
    except MlxError as exc:
        raise _in_context(exc, target.label) from exc
    return store.file_path(pointer.oid)


def load_tensors(
    path: StrPath,
    names: str | Iterable[str] | None = None,
    rev: str = "HEAD",
    repo: StrPath = ".",
    *,
    remote: str | None = None,
    bf16: str = "float32",
) -> dict[str, numpy.ndarray]:
    """Selected tensors of a safetensors artifact as numpy arrays (needs `gitmlx[numpy]`).

    Reads the header, then only the byte ranges of the tensors asked for (all when
    `names` is None). BF16 tensors become float32 (exact), or their raw bits as uint16
    with `bf16="uint16"`. See gitmlx.api.tensors.
    """
    from gitmlx.api import tensors

    tensors.check_ready(bf16)
    target = locate(path, rev, repo)
    # No read-ahead: every range read there is one the caller asked for.
    with open_target(target, remote, readahead=0) as f:
        return tensors.load(f, f.size, target.where, names, bf16)


# -- locating -----------------------------------------------------------------------


def locate(path: StrPath, rev: str, repo: StrPath) -> Target:
    """The repository (a checkout, or a mirror of a URL or bare repository) and the blob
    at `rev:path` in it."""
    ctx, url = repository(rev, repo)
    name = _repo_relative(path, ctx)
    where = f"'{name}' at '{rev}'" + (f" of '{mirror.display_url(url)}'" if url else "")
    blob = scan.blob_at(ctx.top, rev, name)
    if blob is None:
        exists = plumbing.run_git(["rev-parse", "--verify", "-q", f"{rev}^{{tree}}"], cwd=ctx.top, check=False)
        if not exists.strip():
            repo_name = mirror.display_url(url) if url else str(ctx.top)
            raise MlxError(f"revision '{rev}' not found in '{repo_name}'", "check the branch, tag or commit name")
        raise MlxError(f"'{name}' does not exist at '{rev}'", f"list the files with 'git ls-tree -r --name-only {rev}'")
    return Target(ctx, name, rev, blob, where)


def repository(rev: str, repo: StrPath) -> tuple[RepoContext, str | None]:
    """The repository to read `rev` from (a checkout, or a mirror holding `rev`), and the
    URL it mirrors (None for a checkout)."""
    if not isinstance(rev, str) or not rev or rev.startswith("-") or "\n" in rev:
        raise ValueError(f"invalid revision {rev!r}")
    repo_text = os.fspath(repo)
    url: str | None = None
    if mirror.is_url(repo_text):
        url = repo_text
    else:
        ctx = RepoContext(repo_text)
        if ctx.paths.is_bare:
            # Reading a bare repository in place would put a store inside it (for the
            # embedded default remote, inside the remote itself): mirror it instead.
            url = str(Path(repo_text).resolve())
    if url is not None:
        ctx = RepoContext(mirror.ensure(url, rev), mlxconfig_rev=rev)
    return ctx, url


def _repo_relative(path: StrPath, ctx: RepoContext) -> str:
    text = os.fspath(path)
    if os.path.isabs(text):
        top = ctx.paths.work_tree
        rel = os.path.relpath(os.path.realpath(text), os.path.realpath(top)) if top else ".."
        if rel == ".." or rel.startswith(".." + os.sep):
            raise MlxError(f"'{text}' is outside the repository", "give a path relative to its top")
        text = rel
    parts = PurePosixPath(text.replace(os.sep, "/")).parts
    if not parts or parts == (".",) or ".." in parts or "\n" in text:
        raise MlxError(f"invalid path {text!r}", "give a file's path relative to the top of the repository")
    return "/".join(p for p in parts if p != ".")


def open_remote(target: Target, remote: str | None) -> Remote:
    """`remote` (an artifact remote URL, or the name of a git remote), else the repository's."""
    ctx = target.ctx
    if remote is None:
        return ctx.open_remote()
    if remote in ctx.git_remotes():
        return ctx.open_remote(git_remote=remote)
    return remotes.open_remote(remote, ctx.remote_options())


# -- opening ------------------------------------------------------------------------


def open_target(target: Target, remote: str | None, readahead: int | None = None) -> ArtifactFile:
    """An ArtifactFile for a located target (`readahead=0` turns read-ahead off)."""
    pointer = target.pointer
    if pointer is None:
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - owned by the file
        try:
            plumbing.stream_git(["cat-file", "blob", target.blob.sha], spool, cwd=target.ctx.top)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return ArtifactFile(FileSource(spool, target.blob.size), target.path, target.rev, None, "git")  # type: ignore[arg-type]
    local = _open_local(target)
    if local is not None:
        return ArtifactFile(FileSource(local, pointer.size), target.path, target.rev, pointer, "store")
    from gitmlx.api.lazy import READAHEAD_MAX, RemoteSource
    from gitmlx.transfer.rebuild import fetch_manifest

    try:
        chosen = open_remote(target, remote)
        manifest, manifest_bytes = fetch_manifest(chosen, pointer)
    except MlxError as exc:
        raise _in_context(exc, target.label) from exc
    source = RemoteSource(
        chosen,
        manifest,
        target.label,
        readahead=READAHEAD_MAX if readahead is None else readahead,
        manifest_bytes=manifest_bytes,
    )
    return ArtifactFile(source, target.path, target.rev, pointer, "remote")


def _open_local(target: Target) -> BinaryIO | None:
    """The store's file for the target's object, size-checked; None when it is not there.

    The store names an object only after hashing it (store.py), keeps it read-only, and
    `git mlx fsck` re-hashes it; re-hashing gigabytes on every open would defeat ranged
    reads, so only the size is checked here and a sequential read through re-checks the
    sha256 at the end.
    """
    assert target.pointer is not None
    try:
        f = target.ctx.store.open(target.pointer.oid)
    except FileNotFoundError:
        return None
    try:
        f.seek(0, os.SEEK_END)  # a packed object has no file of its own to fstat
        _check_local_size(f.tell(), target)
        f.seek(0)
    except BaseException:
        f.close()
        raise
    return f


def _check_local_size(size: int, target: Target) -> None:
    assert target.pointer is not None
    if size != target.pointer.size:
        raise IntegrityError(
            f"{target.where}: local object {target.pointer.short_oid} has {size} bytes, "
            f"its pointer says {target.pointer.size}",
            "run 'git mlx fsck' to find and remove damaged objects, then read it again",
        )


def _in_context(exc: MlxError, label: str) -> MlxError:
    """`exc` again, its message prefixed with which file and object it is about."""
    try:
        return type(exc)(f"{label}: {exc.message}", exc.hint)
    except TypeError:  # a subclass with its own constructor
        return MlxError(f"{label}: {exc.message}", exc.hint)
