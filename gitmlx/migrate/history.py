"""Rewriting history so that large blobs become pointers: `git mlx migrate import`.

Owns: what each rewritten commit holds: a pointer (content into the store) for each
blob at a matching path, and a top-level .gitattributes line tracking what became a
pointer. The rewrite itself runs through git-filter-repo (git/filter_repo.py). See
docs/migration.md.
Must not: print or parse command lines (commands/migrate.py does), start git itself, or
touch a remote.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.context import RepoContext
from gitmlx.errors import MlxError, UsageError
from gitmlx.format import pointer as pointers
from gitmlx.format.patterns import TRACK_ATTRIBUTES
from gitmlx.format.pointer import MAX_POINTER_SIZE
from gitmlx.git import filter_repo
from gitmlx.git.attributes import PatternMatcher
from gitmlx.git.batch import BlobReader
from gitmlx.git.filter_repo import AddBlob, BlobRef, Commit, CommitRef, FileChange
from gitmlx.git.plumbing import run_git
from gitmlx.migrate.filter_driver import mlx_filter_config
from gitmlx.store.objects import Store


@dataclass(frozen=True)
class ImportOptions:
    include: tuple[str, ...]  # gitattributes patterns, relative to the top
    refs: tuple[str, ...] = ()  # branch or tag names; empty: the current branch
    everything: bool = False  # every ref, remote-tracking ones included (as git lfs migrate)
    above: int | None = None  # only blobs strictly larger than this many bytes


@dataclass
class ImportResult:
    refs: list[str]
    commits: int = 0
    converted: int = 0  # distinct blobs turned into pointers
    converted_bytes: int = 0
    kept_small: int = 0  # matching blobs at or below --above
    already_pointers: int = 0
    changed_refs: list[str] = field(default_factory=list)
    metadata_dir: Path | None = None


def encode_pattern(pattern: str) -> str:
    """A pattern as a gitattributes field: spaces become `[[:space:]]` (as `track` does)."""
    if not pattern.strip() or pattern.startswith(("!", "#")) or any(c in pattern for c in "\t\r\n"):
        raise UsageError(f"invalid pattern {pattern!r}", "use a gitattributes pattern such as '*.bin' or 'models/**'")
    return pattern.replace(" ", "[[:space:]]")


def with_tracked(original: bytes | None, patterns: Sequence[str]) -> bytes:
    """A .gitattributes with a `PATTERN filter=mlx ...` line for each pattern it lacks."""
    text = original or b""
    present = set()
    for line in text.splitlines():
        fields = line.split()
        if fields and not fields[0].startswith(b"#") and b"filter=mlx" in fields[1:]:
            present.add(fields[0].decode("utf-8", "surrogateescape"))
    missing = [p for p in patterns if p not in present]
    if not missing:
        return text
    if text and not text.endswith(b"\n"):
        text += b"\n"
    return text + "".join(f"{p} {TRACK_ATTRIBUTES}\n" for p in missing).encode()


def require_clean_worktree(ctx: RepoContext, command: str = "git mlx migrate import") -> None:
    if ctx.paths.work_tree is None:
        return
    out = run_git(["status", "--porcelain", "-z", "--untracked-files=no"], cwd=ctx.top)
    records, dirty = iter(out.split(b"\0")), []
    for record in records:
        if len(record) > 3:
            dirty.append(record[3:].decode("utf-8", "surrogateescape"))
            if record[:1] in (b"R", b"C"):
                next(records, None)  # a rename's or copy's source path follows
    if dirty:
        shown = ", ".join(f"'{p}'" for p in dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise MlxError(
            f"the work tree has uncommitted changes ({shown}); a history rewrite would lose them",
            f"commit them or 'git stash' them, then run '{command}' again",
        )


def resolve_refs(top: Path, refs: Sequence[str], everything: bool) -> list[str]:
    """Full ref names to rewrite; git fast-export must be given refs, not bare commits."""
    if everything:
        if refs:
            raise UsageError("'--everything' and REF arguments exclude each other", "give one or the other")
        return ["--all"]
    if not refs:
        head = run_git(["symbolic-ref", "-q", "HEAD"], cwd=top, check=False).decode().strip()
        if not head:
            raise UsageError("HEAD is detached: there is no branch to rewrite", "name branches, or use --everything")
        return [head]
    full = []
    for ref in refs:
        name = run_git(["rev-parse", "--symbolic-full-name", ref], cwd=top, check=False).decode().strip()
        if not name.startswith("refs/"):
            raise UsageError(f"'{ref}' is not a branch or tag", "name branches or tags, or use --everything")
        full.append(name)
    return full


@dataclass(frozen=True)
class _Attributes:
    """What a rewritten commit's top-level .gitattributes is made of: the commit's own
    (its blob id; None when it has none) and the tracking lines it must hold."""

    original: bytes | None
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _CommitState:
    """What a rewritten commit passes to the children that have it as first parent."""

    attributes: _Attributes
    pointer_paths: frozenset[bytes]  # with --above: the paths it holds as pointers


_ROOT = _CommitState(_Attributes(None, ()), frozenset())


class _Rewriter:
    """The edit git-filter-repo applies to each commit: pointers for matching blobs,
    tracked patterns.

    fast-export runs without blob data, so each file change carries the original blob id
    and content is streamed from cat-file into the store; only the small pointer blobs
    pass through fast-import's stream.

    Each commit's top-level .gitattributes is its original one plus the lines that track
    what that commit holds as pointers: the patterns, or with `--above` the exact paths
    converted (a pattern would also catch the small files left as they are, and those
    would then show as modified). fast-export lists changes against the first parent, so
    each commit's state (_CommitState) is carried from parent to child.
    """

    def __init__(self, store: Store, blobs: BlobReader, wanted: PatternMatcher, options: ImportOptions) -> None:
        self.store, self.blobs, self.wanted, self.options = store, blobs, wanted, options
        self.patterns = tuple(encode_pattern(p) for p in options.include)
        self._new_ids: dict[bytes, tuple[BlobRef, bool]] = {}  # blob sha -> (id to use, is a pointer)
        self._attributes: dict[_Attributes, BlobRef | None] = {}
        self._states: dict[CommitRef, _CommitState] = {}
        self.result = ImportResult([])

    def _content(self, sha: bytes) -> bytes:
        parts: list[bytes] = []
        self.blobs.copy(sha, parts.append)
        return b"".join(parts)

    def attributes_id(self, attributes: _Attributes, add_blob: AddBlob) -> BlobRef | None:
        """The blob of this .gitattributes; None when there is to be no file."""
        if attributes not in self._attributes:
            original = attributes.original
            content = None if original is None else self._content(original)
            if content is None and not attributes.lines:
                self._attributes[attributes] = None
            else:
                new = with_tracked(content, attributes.lines)
                self._attributes[attributes] = original if new == content else add_blob(new)
        return self._attributes[attributes]

    def blob_id(self, sha: bytes, add_blob: AddBlob) -> tuple[BlobRef, bool]:
        """(id of the blob to commit instead, whether it is a pointer)."""
        if sha in self._new_ids:
            return self._new_ids[sha]
        size = self.blobs.size(sha)
        new: tuple[BlobRef, bool] = (sha, False)
        if self.options.above is not None and size <= self.options.above:
            self.result.kept_small += 1
        elif size < MAX_POINTER_SIZE:
            data = self._content(sha)
            if pointers.parse(data) is not None:
                self.result.already_pointers += 1
                new = (sha, True)
            else:
                new = (self._store_pointer(lambda write: write(data), add_blob), True)
        else:
            new = (self._store_pointer(lambda write: self.blobs.copy(sha, write), add_blob), True)
        self._new_ids[sha] = new
        return new

    def _store_pointer(self, fill: Callable[[Callable[[bytes], object]], object], add_blob: AddBlob) -> int:
        with self.store.writer() as writer:
            fill(writer.write)
            stored = writer.commit()
        self.result.converted += 1
        self.result.converted_bytes += stored.size
        return add_blob(stored.encode())

    def commit(self, commit: Commit, add_blob: AddBlob) -> list[FileChange]:
        self.result.commits += 1
        parent = self._states.get(commit.parents[0], _ROOT) if commit.parents else _ROOT
        original, paths = parent.attributes.original, set(parent.pointer_paths)
        touched, mode = False, b"100644"
        changes = []
        for change in commit.changes:
            if change.path == b".gitattributes" and change.mode != b"120000":
                touched = True
                original = change.blob if change.kind == b"M" and isinstance(change.blob, bytes) else None
                mode = change.mode if change.kind == b"M" and change.mode is not None else mode
                continue  # written below, from the new state
            is_pointer = False
            if (
                change.kind == b"M"
                and change.mode in (b"100644", b"100755")
                and isinstance(change.blob, bytes)
                and self.wanted(change.path)
            ):
                new_blob, is_pointer = self.blob_id(change.blob, add_blob)
                change = dataclasses.replace(change, blob=new_blob)
            if self.options.above is not None:  # only exact-path tracking needs the paths
                (paths.add if is_pointer else paths.discard)(change.path)
            changes.append(change)
        lines = self.patterns if self.options.above is None else tuple(_exact_pattern(p) for p in sorted(paths))
        attributes = _Attributes(original, lines)
        unchanged = paths == parent.pointer_paths  # then share the parent's set
        self._states[commit.mark] = _CommitState(attributes, parent.pointer_paths if unchanged else frozenset(paths))
        if touched or attributes != parent.attributes:
            blob = self.attributes_id(attributes, add_blob)
            if blob is not None:
                changes.append(FileChange(b"M", b".gitattributes", blob, mode))
            elif touched or self.attributes_id(parent.attributes, add_blob) is not None:
                changes.append(FileChange(b"D", b".gitattributes"))
        return changes


def _exact_pattern(path: bytes) -> str:
    """A gitattributes pattern matching exactly `path` from the top (wildcards escaped)."""
    text = path.decode("utf-8", "surrogateescape")
    escaped = "".join("\\" + c if c in "*?[\\" else "[[:space:]]" if c.isspace() else c for c in text)
    return "/" + escaped


def import_history(
    ctx: RepoContext, options: ImportOptions, on_start: Callable[[], None] = lambda: None
) -> ImportResult:
    """Rewrite `options.refs` so matching blobs become gitmlx pointers (content → store).

    Refuses a dirty work tree. Afterwards the rewritten refs point at new commits, the
    old ones stay in the object database (reflogs) until expired, and the work tree is
    reset to the new HEAD through gitmlx's smudge filter. `on_start` is called once the
    checks passed, just before the rewrite begins.
    """
    filter_repo.ensure_installed()
    top = ctx.top
    patterns = [encode_pattern(p) for p in options.include]
    if not patterns:
        raise UsageError("no --include pattern given", "name what to convert, e.g. --include '*.safetensors'")
    refs = resolve_refs(top, options.refs, options.everything)
    require_clean_worktree(ctx)
    if ctx.paths.work_tree is not None:
        mlx_filter_config(ctx)  # the final reset must smudge pointers back into content
    metadata = filter_repo.start_fresh(ctx.paths.git_dir)
    before = ref_values(top)
    on_start()
    with contextlib.closing(BlobReader(top)) as blobs, contextlib.closing(PatternMatcher(top, patterns)) as wanted:
        rewriter = _Rewriter(ctx.store, blobs, wanted, options)
        rewriter.result.refs = refs
        filter_repo.rewrite(top, refs, rewriter.commit)
    result = rewriter.result
    result.metadata_dir = metadata
    after = ref_values(top)
    result.changed_refs = sorted(ref for ref, sha in after.items() if before.get(ref) != sha)
    return result


def ref_values(top: Path) -> dict[str, str]:
    out = run_git(["for-each-ref", "--format=%(refname) %(objectname)"], cwd=top).decode("utf-8", "surrogateescape")
    return dict(line.rsplit(" ", 1) for line in out.splitlines() if line)
