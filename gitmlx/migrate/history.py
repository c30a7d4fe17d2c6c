"""Taking over an existing repository: from Git LFS, or from large blobs in history.

Owns: `from-lfs` (switching `filter=lfs` attributes to mlx, importing `.git/lfs/objects`
into the store with verification, pointing the `lfs` filter driver at gitmlx, replacing
Git LFS's hooks) and `import` (rewriting history with git-filter-repo so that matching
blobs become gitmlx pointers). See docs/migration.md.
Must not: print or parse command lines (commands/migrate.py does), or touch a remote.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.context import RepoContext
from gitmlx.errors import IntegrityError, MlxError, UsageError
from gitmlx.format import pointer as pointers
from gitmlx.format.pointer import MAX_POINTER_SIZE, Pointer, is_valid_oid
from gitmlx.git import hooks, scan
from gitmlx.git.attributes import PatternMatcher
from gitmlx.git.batch import BlobReader
from gitmlx.git.plumbing import GitError, run_git, set_config
from gitmlx.git.scan import TrackedFile
from gitmlx.store.objects import BLOCK_SIZE, Store, StoredObject

ATTRIBUTES = "filter=mlx diff=mlx merge=mlx -text"
FILTER_KEYS = ("process", "clean", "smudge", "required")

# --- from-lfs: attributes ------------------------------------------------------------

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


# --- from-lfs: objects -----------------------------------------------------------------


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
    """(path, name) of each file in Git LFS's `<oid[0:2]>/<oid[2:4]>/<oid>` layout."""
    if not objects.is_dir():
        return
    for first in sorted(os.scandir(objects), key=lambda e: e.name):
        if not first.is_dir(follow_symlinks=False):
            continue
        for second in sorted(os.scandir(first.path), key=lambda e: e.name):
            if not second.is_dir(follow_symlinks=False):
                continue
            for entry in sorted(os.scandir(second.path), key=lambda e: e.name):
                if entry.is_file(follow_symlinks=False):
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
        with store.writer() as writer, open(path, "rb") as source:
            while block := source.read(BLOCK_SIZE):
                writer.write(block)
            try:
                stored = writer.commit(Pointer(name, writer.size))
            except IntegrityError:
                result.bad.append(BadObject(path, f"content hashes to {writer.oid[:10]}, not to its name"))
                continue
        result.imported.append(StoredObject(stored.oid, stored.size))
    return result


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


# --- from-lfs: filter driver and hooks -----------------------------------------------


def mlx_filter_config(ctx: RepoContext) -> dict[str, str]:
    """The effective `filter.mlx.*` (as `git mlx install` wrote it), or an error saying so."""
    values = {key: ctx.config.git(f"filter.mlx.{key}") for key in FILTER_KEYS}
    if not values["process"] and not values["smudge"]:
        raise MlxError("gitmlx's filters are not configured", "run 'git mlx install' first")
    return {k: v for k, v in values.items() if v}


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


# --- import: rewriting history -------------------------------------------------------


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
    return text + "".join(f"{p} {ATTRIBUTES}\n" for p in missing).encode()


def require_clean_worktree(ctx: RepoContext) -> None:
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
            "commit them or 'git stash' them, then run 'git mlx migrate import' again",
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


#: A commit's .gitattributes before rewriting (blob id, or None) and the lines it needs.
_AttrState = tuple[bytes | None, tuple[str, ...]]


class _Rewriter:
    """git-filter-repo's commit callback: pointers for matching blobs, tracked patterns.

    filter-repo runs fast-export without blob data (no blob callback is given), so each
    file change carries the original blob id and content is streamed from cat-file into
    the store; only the small pointer blobs pass through fast-import's stream.

    Each commit's top-level .gitattributes is its original one plus the lines that track
    what that commit holds as pointers: the patterns, or with `--above` the exact paths
    converted (a pattern would also catch the small files left as they are, and those
    would then show as modified). fast-export lists changes against the first parent, so
    the state (original .gitattributes blob, lines) is carried from parent to child.
    """

    def __init__(self, store: Store, blobs: BlobReader, wanted: PatternMatcher, options: ImportOptions) -> None:
        self.store, self.blobs, self.wanted, self.options = store, blobs, wanted, options
        self.patterns = tuple(encode_pattern(p) for p in options.include)
        self.insert: Callable[[object], None] = lambda _blob: None
        self.blob_type: Callable[[bytes], object] = lambda data: data
        self.file_change: Callable[..., object] = lambda *a: a
        self._new_ids: dict[bytes, tuple[object, bool]] = {}  # blob sha -> (id to use, is a pointer)
        self._attributes: dict[_AttrState, object | None] = {}
        self._states: dict[object, tuple[_AttrState, frozenset[bytes]]] = {}
        self.result = ImportResult([])

    def _insert(self, data: bytes) -> object:
        blob = self.blob_type(data)
        self.insert(blob)
        return blob.id  # type: ignore[attr-defined]

    def attributes_id(self, state: _AttrState) -> object | None:
        """The blob for a state's .gitattributes; None when there is to be no file."""
        if state not in self._attributes:
            original, lines = state
            content = None
            if original is not None:
                parts: list[bytes] = []
                self.blobs.copy(original, parts.append)
                content = b"".join(parts)
            if content is None and not lines:
                self._attributes[state] = None
            else:
                new = with_tracked(content, lines)
                self._attributes[state] = original if new == content else self._insert(new)
        return self._attributes[state]

    def blob_id(self, sha: bytes) -> tuple[object, bool]:
        """(id of the blob to commit instead, whether it is a pointer)."""
        if sha in self._new_ids:
            return self._new_ids[sha]
        size = self.blobs.size(sha)
        new: tuple[object, bool] = (sha, False)
        if self.options.above is not None and size <= self.options.above:
            self.result.kept_small += 1
        elif size < MAX_POINTER_SIZE:
            parts: list[bytes] = []
            self.blobs.copy(sha, parts.append)
            data = b"".join(parts)
            if pointers.parse(data) is not None:
                self.result.already_pointers += 1
                new = (sha, True)
            else:
                new = (self._store_pointer(lambda write: write(data)), True)
        else:
            new = (self._store_pointer(lambda write: self.blobs.copy(sha, write)), True)
        self._new_ids[sha] = new
        return new

    def _store_pointer(self, fill: Callable[[Callable[[bytes], object]], object]) -> object:
        with self.store.writer() as writer:
            fill(writer.write)
            stored = writer.commit()
        self.result.converted += 1
        self.result.converted_bytes += stored.size
        return self._insert(stored.encode())

    def commit(self, commit, _metadata=None) -> None:  # commit: git_filter_repo.Commit
        self.result.commits += 1
        empty: tuple[_AttrState, frozenset[bytes]] = ((None, ()), frozenset())
        parent_state, converted = self._states.get(commit.parents[0], empty) if commit.parents else empty
        original, paths = parent_state[0], set(converted)
        touched, mode = False, b"100644"
        changes = []
        for change in commit.file_changes:
            if change.filename == b".gitattributes" and change.mode != b"120000":
                touched = True
                original = change.blob_id if change.type == b"M" and isinstance(change.blob_id, bytes) else None
                mode = change.mode if change.type == b"M" else mode
                continue  # written below, from the new state
            is_pointer = False
            if (
                change.type == b"M"
                and change.mode in (b"100644", b"100755")
                and isinstance(change.blob_id, bytes)
                and self.wanted(change.filename)
            ):
                change.blob_id, is_pointer = self.blob_id(change.blob_id)
            if self.options.above is not None:  # only exact-path tracking needs the paths
                (paths.add if is_pointer else paths.discard)(change.filename)
            changes.append(change)
        lines = self.patterns if self.options.above is None else tuple(_exact_pattern(p) for p in sorted(paths))
        state: _AttrState = (original, lines)
        self._states[commit.id] = (state, converted if paths == converted else frozenset(paths))
        if touched or state != parent_state:
            blob = self.attributes_id(state)
            if blob is not None:
                changes.append(self.file_change(b"M", b".gitattributes", blob, mode))
            elif touched or self.attributes_id(parent_state) is not None:
                changes.append(self.file_change(b"D", b".gitattributes"))
        commit.file_changes = changes


def _exact_pattern(path: bytes) -> str:
    """A gitattributes pattern matching exactly `path` from the top (wildcards escaped)."""
    text = path.decode("utf-8", "surrogateescape")
    escaped = "".join("\\" + c if c in "*?[\\" else "[[:space:]]" if c.isspace() else c for c in text)
    return "/" + escaped


def _load_filter_repo():  # -> the git_filter_repo module
    try:
        import git_filter_repo
    except ImportError as exc:
        raise MlxError(
            "git-filter-repo is not installed (needed to rewrite history)",
            "install it with 'pip install git-filter-repo' in gitmlx's environment",
        ) from exc
    return git_filter_repo


@contextlib.contextmanager
def _in_directory(path: Path) -> Iterator[None]:
    """filter-repo works on the repository in the current directory."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def import_history(
    ctx: RepoContext, options: ImportOptions, on_start: Callable[[], None] = lambda: None
) -> ImportResult:
    """Rewrite `options.refs` so matching blobs become gitmlx pointers (content → store).

    Refuses a dirty work tree. Afterwards the rewritten refs point at new commits, the
    old ones stay in the object database (reflogs) until expired, and the work tree is
    reset to the new HEAD through gitmlx's smudge filter. `on_start` is called once the
    checks passed, just before the rewrite begins.
    """
    fr = _load_filter_repo()
    top = ctx.top
    patterns = [encode_pattern(p) for p in options.include]
    if not patterns:
        raise UsageError("no --include pattern given", "name what to convert, e.g. --include '*.safetensors'")
    refs = resolve_refs(top, options.refs, options.everything)
    require_clean_worktree(ctx)
    if ctx.paths.work_tree is not None:
        mlx_filter_config(ctx)  # the final reset must smudge pointers back into content
    metadata = ctx.paths.git_dir / "filter-repo"
    # Each import is a fresh rewrite; a marker from an earlier run would make filter-repo
    # treat this as a continuation (and prompt on stdin when that run is over a day old).
    with contextlib.suppress(FileNotFoundError):
        (metadata / "already_ran").unlink()
    before = _ref_values(top)
    on_start()
    args = fr.FilteringOptions.parse_args(
        ["--force", "--quiet", "--prune-empty", "never", "--prune-degenerate", "never", "--refs", "HEAD"]
    )
    args.refs = refs  # set after parsing: argparse would take '--all' for an option
    captured = io.StringIO()
    with contextlib.closing(BlobReader(top)) as blobs, contextlib.closing(PatternMatcher(top, patterns)) as wanted:
        rewriter = _Rewriter(ctx.store, blobs, wanted, options)
        rewriter.result.refs = refs
        rewriter.blob_type, rewriter.file_change = fr.Blob, fr.FileChange
        try:
            with _in_directory(top), contextlib.redirect_stdout(captured):
                repo_filter = fr.RepoFilter(args, commit_callback=rewriter.commit)
                rewriter.insert = repo_filter.insert
                repo_filter.run()
        except SystemExit as exc:
            said = exc.code if isinstance(exc.code, str) else (captured.getvalue().strip().splitlines() or ["?"])[-1]
            raise MlxError(f"git-filter-repo failed: {said.strip()}", "see the messages above") from None
    result = rewriter.result
    result.metadata_dir = metadata
    after = _ref_values(top)
    result.changed_refs = sorted(ref for ref, sha in after.items() if before.get(ref) != sha)
    return result


def _ref_values(top: Path) -> dict[str, str]:
    out = run_git(["for-each-ref", "--format=%(refname) %(objectname)"], cwd=top).decode("utf-8", "surrogateescape")
    return dict(line.rsplit(" ", 1) for line in out.splitlines() if line)
