"""Taking over a Git LFS repository: `git mlx migrate from-lfs`.

Owns: switching `filter=lfs` attributes to mlx, importing `.git/lfs/objects` into the
store with verification, pointing the `lfs` filter driver at gitmlx, replacing Git LFS's
hooks. See docs/migration.md.
Must not: print or parse command lines (commands/migrate.py does), rewrite history
(history.py does), or touch a remote.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.context import RepoContext
from gitmlx.errors import IntegrityError
from gitmlx.format.pointer import Pointer, is_valid_oid
from gitmlx.git import hooks, scan
from gitmlx.git.plumbing import GitError, run_git, set_config
from gitmlx.git.scan import TrackedFile
from gitmlx.migrate.filter_driver import mlx_filter_config
from gitmlx.store.objects import BLOCK_SIZE, Store, StoredObject, sharded_files

# --- attributes ------------------------------------------------------------------------

#: `filter=lfs`, `diff=lfs`, `merge=lfs` as whole attribute fields (after the pattern).
_LFS_ATTR = re.compile(rb"(?<=[ \t])(filter|diff|merge)=lfs(?=[ \t\r\n]|$)")


@dataclass(frozen=True)
class AttributesEdit:
    path: str  # relative to the top of the work tree, '/'-separated
    lines: int  # lines switched from lfs to mlx


def _pattern_end(line: bytes) -> int:
    """Index just past a gitattributes line's pattern (which may be "quoted")."""
    i = len(line) - len(line.lstrip())
    if line[i : i + 1] == b'"':
        i += 1
        while i < len(line) and line[i : i + 1] != b'"':
            i += 2 if line[i : i + 1] == b"\\" else 1
        return i + 1
    while i < len(line) and line[i : i + 1] not in b" \t\r\n":
        i += 1
    return i


def switch_lfs_attributes(text: bytes) -> tuple[bytes, int]:
    """`filter=lfs diff=lfs merge=lfs` → `=mlx` on every line; everything else byte for byte."""
    out, changed = [], 0
    for line in text.splitlines(keepends=True):
        body = line.lstrip()
        if not body.strip() or body.startswith(b"#"):
            out.append(line)
            continue
        end = _pattern_end(line)
        rest = _LFS_ATTR.sub(lambda m: m.group(1) + b"=mlx", line[end:])
        changed += rest != line[end:]
        out.append(line[:end] + rest)
    return b"".join(out), changed


def attributes_files(top: Path) -> list[str]:
    """Every `.gitattributes` in the work tree, tracked or not (ignored ones aside)."""
    out = run_git(["ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=top)
    found = {p for p in out.decode("utf-8", "surrogateescape").split("\0") if p.rsplit("/", 1)[-1] == ".gitattributes"}
    return sorted(p for p in found if (top / p).is_file())


def switch_attributes(top: Path) -> list[AttributesEdit]:
    edits = []
    for rel in attributes_files(top):
        path = top / rel
        text = path.read_bytes()
        new, changed = switch_lfs_attributes(text)
        if changed:
            _replace_file(path, new)
            edits.append(AttributesEdit(rel, changed))
    return edits


def _replace_file(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.mlx-{os.getpid()}")
    tmp.write_bytes(data)
    os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)


# --- objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BadObject:
    path: Path
    reason: str


@dataclass
class LfsImport:
    source: Path
    imported: list[StoredObject] = field(default_factory=list)
    present: int = 0  # already in the store
    bad: list[BadObject] = field(default_factory=list)

    @property
    def imported_bytes(self) -> int:
        return sum(o.size for o in self.imported)


def lfs_objects_dir(ctx: RepoContext) -> Path:
    """`<git-common-dir>/lfs/objects`, or under `lfs.storage` (relative to the git dir)."""
    storage = ctx.config.git("lfs.storage")
    base = ctx.paths.common_dir / "lfs"
    if storage:
        base = Path(storage).expanduser()
        if not base.is_absolute():
            base = ctx.paths.common_dir / base
    return base / "objects"


def _lfs_files(objects: Path) -> Iterator[tuple[Path, str]]:
    """(path, name) of each file in Git LFS's `<oid[0:2]>/<oid[2:4]>/<oid>` layout, the same
    sharding as the store's loose objects."""
    for _, entry in sharded_files(objects):
        yield Path(entry.path), entry.name


def import_lfs_objects(objects: Path, store: Store) -> LfsImport:
    """Copy every Git LFS object into the store, hashing each on the way in.

    An object whose bytes do not hash to its file name is skipped and reported, never
    stored under that name. Memory stays bounded (the copy streams).
    """
    result = LfsImport(objects)
    for path, name in _lfs_files(objects):
        if not is_valid_oid(name) or path.parent.name != name[2:4] or path.parent.parent.name != name[0:2]:
            result.bad.append(BadObject(path, "not named by a sha256 oid in its <aa>/<bb>/ folder"))
            continue
        if store.has(name):
            result.present += 1
            continue
        outcome = _import_one(path, name, store)
        if isinstance(outcome, BadObject):
            result.bad.append(outcome)
        else:
            result.imported.append(outcome)
    return result


def _import_one(path: Path, oid: str, store: Store) -> StoredObject | BadObject:
    with store.writer() as writer, open(path, "rb") as source:
        while block := source.read(BLOCK_SIZE):
            writer.write(block)
        try:
            stored = writer.commit(Pointer(oid, writer.size))
        except IntegrityError:
            return BadObject(path, f"content hashes to {writer.oid[:10]}, not to its name")
    return StoredObject(stored.oid, stored.size)


def import_lfs_object(ctx: RepoContext, pointer: Pointer) -> bool:
    """Copy one object from Git LFS's folder into the store, verified, if it is there
    (a push of history from before the migration, after `git lfs fetch --all`)."""
    oid = pointer.oid
    path = lfs_objects_dir(ctx) / oid[0:2] / oid[2:4] / oid
    try:
        if not path.is_file() or path.stat().st_size != pointer.size:
            return False
        return isinstance(_import_one(path, oid, ctx.store), StoredObject)
    except OSError:
        return False


def missing_lfs_objects(top: Path, store: Store) -> list[TrackedFile]:
    """Git LFS pointers anywhere in history whose object the store lacks."""
    found = scan.pointers_in_range(top, ["--all"], tracked_at=None)
    return [f for f in found if f.pointer.is_lfs and not store.has(f.pointer.oid)]


def lfs_available(top: Path) -> bool:
    try:
        run_git(["lfs", "version"], cwd=top)
    except GitError:
        return False
    return True


def fetch_lfs(top: Path) -> None:
    run_git(["lfs", "fetch", "--all"], cwd=top)


# --- filter driver and hooks -----------------------------------------------------------


def take_over_lfs_filter(ctx: RepoContext) -> dict[str, str]:
    """Point this clone's `lfs` filter driver at gitmlx (local config).

    Commits made before the migration still say `filter=lfs` in their .gitattributes;
    with this, checking them out smudges their Git LFS pointers through gitmlx (same
    sha256 oids), whether or not git-lfs is installed.
    """
    values = mlx_filter_config(ctx)
    for key, value in values.items():
        set_config(f"filter.lfs.{key}", value, scope="local", cwd=ctx.top)
    return values


def _is_lfs_hook(text: str, name: str) -> bool:
    """Exactly the hook `git lfs install` writes (2.x and 3.x), nothing the user added."""
    run_line = f'git lfs {name} "$@"'
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    allowed = (
        lambda s: s.startswith("#"),
        lambda s: s.startswith("command -v git-lfs "),
        lambda s: s == run_line,
    )
    return run_line in lines and all(any(ok(line) for ok in allowed) for line in lines)


def replace_lfs_hooks(top: Path) -> tuple[list[str], hooks.HookReport]:
    """Remove Git LFS's own hooks, then install gitmlx's (a foreign hook is refused)."""
    directory = hooks.hooks_dir(top)
    removed = []
    for name in hooks.HOOK_NAMES:
        path = directory / name
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _is_lfs_hook(text, name):
            path.unlink()
            removed.append(name)
    return removed, hooks.install_hooks(top)
