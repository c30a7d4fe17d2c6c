"""Leaving gitmlx with history kept working: `git mlx migrate export --to lfs|git`.

Owns: what each rewritten commit holds instead of gitmlx's pointers: Git LFS pointers
(same oid and size) with their objects written to `.git/lfs/objects`, or the content
itself as plain git blobs; and .gitattributes whose `filter=mlx` lines say `filter=lfs`,
or lose their drivers. The rewrite runs through git-filter-repo (git/filter_repo.py), with
the ref resolution and dirty-tree check `migrate import` uses (history.py). See
docs/migration.md.
Must not: print, parse command lines or fetch from a remote (commands/migrate.py does),
or start git itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.context import RepoContext
from gitmlx.errors import IntegrityError, MlxError, UsageError
from gitmlx.format import pointer as pointers
from gitmlx.format.attrlines import switch_drivers
from gitmlx.format.pointer import LFS_VERSION, MAX_POINTER_SIZE, Pointer
from gitmlx.git import filter_repo, scan
from gitmlx.git.batch import BlobReader
from gitmlx.git.blob_writer import write_blobs
from gitmlx.git.filter_repo import AddBlob, BlobRef, Commit, FileChange
from gitmlx.git.plumbing import read_config, set_config, unset_config
from gitmlx.git.scan import TrackedFile
from gitmlx.migrate import history
from gitmlx.migrate.filter_driver import FILTER_KEYS, mlx_filter_config
from gitmlx.migrate.from_lfs import lfs_objects_dir, take_over_lfs_filter
from gitmlx.store.blockio import BLOCK_SIZE
from gitmlx.store.objects import Store

TARGETS = ("lfs", "git")


@dataclass(frozen=True)
class ExportOptions:
    to: str  # one of TARGETS
    refs: tuple[str, ...] = ()  # branch or tag names; empty: the current branch
    everything: bool = False  # every ref, remote-tracking ones included
    allow_missing: bool = False  # rewrite even when objects are missing (their pointers stay)


@dataclass
class ExportPlan:
    """What an export will rewrite and which objects it needs, found before any change."""

    options: ExportOptions
    refs: list[str]
    files: list[TrackedFile]  # every pointer blob in the history of `refs`, each once

    def objects(self) -> dict[str, Pointer]:
        return {f.pointer.oid: f.pointer for f in self.files}


@dataclass
class ExportResult:
    refs: list[str]
    commits: int = 0
    pointers: int = 0  # distinct pointer blobs replaced
    objects: int = 0  # objects written to .git/lfs/objects or into git (not already there)
    object_bytes: int = 0
    attributes: int = 0  # distinct .gitattributes blobs edited
    kept: list[str] = field(default_factory=list)  # oids left as pointers: their object was missing
    changed_refs: list[str] = field(default_factory=list)
    metadata_dir: Path | None = None
    lfs_objects: Path | None = None


def plan_export(ctx: RepoContext, options: ExportOptions) -> ExportPlan:
    """Check that an export can start (nothing changed yet) and list the pointers it replaces."""
    filter_repo.ensure_installed()
    if options.to not in TARGETS:
        raise UsageError(f"unknown target {options.to!r}", "use '--to lfs' or '--to git'")
    if ctx.paths.work_tree is None:
        raise MlxError("this is a bare repository", "run 'git mlx migrate export' in a clone with a work tree")
    refs = history.resolve_refs(ctx.top, options.refs, options.everything)
    history.require_clean_worktree(ctx, "git mlx migrate export")
    files = scan.pointers_in_range(ctx.top, refs, tracked_at=None)
    return ExportPlan(options, refs, files)


def lfs_object_path(objects: Path, oid: str) -> Path:
    """Git LFS's layout: `objects/OID[0:2]/OID[2:4]/OID`."""
    return objects / oid[0:2] / oid[2:4] / oid


def _in_lfs(objects: Path, pointer: Pointer) -> bool:
    try:
        return lfs_object_path(objects, pointer.oid).stat().st_size == pointer.size
    except OSError:
        return False


def missing(ctx: RepoContext, plan: ExportPlan) -> list[TrackedFile]:
    """Pointers whose object neither the store nor (for `--to lfs`) Git LFS's folder holds."""
    lfs = lfs_objects_dir(ctx) if plan.options.to == "lfs" else None
    return [
        f for f in plan.files if not ctx.store.has(f.pointer.oid) and not (lfs is not None and _in_lfs(lfs, f.pointer))
    ]


def _copy_verified(store: Store, pointer: Pointer, folder: Path) -> Path:
    """A new file in `folder` holding the object, hashed on the way: never a corrupt copy."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"mlx-export-{pointer.oid[:16]}-{os.getpid()}"
    digest = hashlib.sha256()
    try:
        with store.open(pointer.oid) as src, open(tmp, "wb") as dst:
            while block := src.read(BLOCK_SIZE):
                digest.update(block)
                dst.write(block)
        if digest.hexdigest() != pointer.oid or tmp.stat().st_size != pointer.size:
            raise IntegrityError(
                f"the local store's copy of {pointer.short_oid} does not hash to its name",
                "run 'git mlx fsck' (it moves the damaged copy aside), then 'git mlx fetch --all'",
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _write_objects(ctx: RepoContext, plan: ExportPlan, result: ExportResult) -> dict[str, bytes]:
    """Put each object the history needs where the target reads it; for `--to git` return
    the blob id of each one's content."""
    blob_ids: dict[str, bytes] = {}
    lfs = lfs_objects_dir(ctx)
    for oid, pointer in plan.objects().items():
        if plan.options.to == "lfs" and _in_lfs(lfs, pointer):
            continue
        if not ctx.store.has(oid):
            result.kept.append(oid)
            continue
        if plan.options.to == "lfs":
            tmp = _copy_verified(ctx.store, pointer, lfs.parent / "tmp")
            dest = lfs_object_path(lfs, oid)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        else:
            tmp = _copy_verified(ctx.store, pointer, ctx.paths.git_dir / "mlx-export")
            try:
                blob_ids[oid] = write_blobs(ctx.top, [tmp])[0]
            finally:
                tmp.unlink(missing_ok=True)
        result.objects += 1
        result.object_bytes += pointer.size
    with contextlib.suppress(OSError):
        (ctx.paths.git_dir / "mlx-export").rmdir()
    return blob_ids


def _is_attributes(path: bytes) -> bool:
    return path == b".gitattributes" or path.endswith(b"/.gitattributes")


class _Exporter:
    """The edit git-filter-repo applies to each commit: every regular file whose blob is a
    pointer gets the Git LFS pointer or the content blob, every .gitattributes the
    switched drivers. Each blob is looked at once, however many commits hold it."""

    def __init__(self, blobs: BlobReader, to: str, content: dict[str, bytes], result: ExportResult) -> None:
        self.blobs, self.to, self.content, self.result = blobs, to, content, result
        self._new: dict[bytes, BlobRef] = {}

    def _read(self, sha: bytes) -> bytes:
        parts: list[bytes] = []
        self.blobs.copy(sha, parts.append)
        return b"".join(parts)

    def _file(self, sha: bytes, add_blob: AddBlob) -> BlobRef:
        if self.blobs.size(sha) >= MAX_POINTER_SIZE:
            return sha
        found = pointers.parse(self._read(sha))
        if found is None:
            return sha
        if self.to == "git":
            new = self.content.get(found.oid, sha)
        elif found.is_lfs:
            new = sha  # already what Git LFS reads
        else:
            new = add_blob(Pointer(found.oid, found.size, LFS_VERSION).encode())
        self.result.pointers += new != sha
        return new

    def _attributes(self, sha: bytes, add_blob: AddBlob) -> BlobRef:
        text = self._read(sha)
        if self.to == "lfs":
            new, changed = switch_drivers(text, ["mlx"], "lfs")
        else:
            new, changed = switch_drivers(text, ["mlx", "lfs"], None)
        if not changed:
            return sha
        self.result.attributes += 1
        return add_blob(new)

    def commit(self, commit: Commit, add_blob: AddBlob) -> list[FileChange]:
        self.result.commits += 1
        changes = []
        for change in commit.changes:
            blob = change.blob
            if change.kind == b"M" and change.mode in (b"100644", b"100755") and isinstance(blob, bytes):
                if blob not in self._new:
                    edit = self._attributes if _is_attributes(change.path) else self._file
                    self._new[blob] = edit(blob, add_blob)
                change = dataclasses.replace(change, blob=self._new[blob])
            changes.append(change)
        return changes


@contextlib.contextmanager
def _lfs_filter_for_reset(ctx: RepoContext) -> Iterator[None]:
    """filter-repo ends with `git reset --hard`; the new tree says `filter=lfs`, so let
    gitmlx smudge those pointers from its store for that reset (whatever Git LFS set-up
    this machine has), then give `filter.lfs.*` back: the clone's own values as they
    were, unless they ran gitmlx (`migrate from-lfs` set them), which are removed."""
    config = ctx.paths.common_dir / "config"
    before = {e.key: e.value for e in read_config(file=config) if e.key.startswith("filter.lfs.")}
    mlx = mlx_filter_config(ctx)
    take_over_lfs_filter(ctx)
    try:
        yield
    finally:
        for key in FILTER_KEYS:
            name = f"filter.lfs.{key}"
            unset_config(name, cwd=ctx.top)
            value = before.get(name)
            if value is not None and value != mlx.get(key):
                set_config(name, value, cwd=ctx.top)


def export_history(ctx: RepoContext, plan: ExportPlan, on_start: Callable[[], None] = lambda: None) -> ExportResult:
    """Write the objects the target needs, then rewrite `plan.refs` (see the module doc).

    Objects first: a rewrite that fails halfway leaves the old history and some harmless
    extra files, never a history whose objects are nowhere. Afterwards the work tree is
    reset to the new HEAD and `git status` is clean; the old commits stay reachable from
    the reflogs, with the old → new map in `.git/filter-repo/commit-map`.
    """
    options = plan.options
    gaps = missing(ctx, plan)
    if gaps and not options.allow_missing:
        raise MlxError(f"{len({f.pointer.oid for f in gaps})} object(s) are missing", "see 'git mlx migrate export'")
    result = ExportResult(plan.refs, lfs_objects=lfs_objects_dir(ctx) if options.to == "lfs" else None)
    content = _write_objects(ctx, plan, result)
    metadata = filter_repo.start_fresh(ctx.paths.git_dir)
    before = history.ref_values(ctx.top)
    on_start()
    reset_filter = _lfs_filter_for_reset(ctx) if options.to == "lfs" else contextlib.nullcontext()
    with reset_filter, contextlib.closing(BlobReader(ctx.top)) as blobs:
        filter_repo.rewrite(ctx.top, plan.refs, _Exporter(blobs, options.to, content, result).commit)
    result.metadata_dir = metadata
    after = history.ref_values(ctx.top)
    result.changed_refs = sorted(ref for ref, sha in after.items() if before.get(ref) != sha)
    return result
