"""Finding pointers in git: in a tree, in the index, or in a range of history.

Owns: listing blobs small enough to be pointers and parsing them, with a constant number
of git processes (ls-tree / ls-files / rev-list and diff-tree, then cat-file in batch
mode, then check-attr) whatever the number of files.
Must not: read content bigger than a pointer, or touch the store.

An artifact is a tree entry, not a blob: a blob that parses as a pointer is one only in
a regular file (not a symlink, whose blob is its target, nor a submodule) whose path git
runs through gitmlx's filter (attributes.py). Keep-sets (prune, gc) ask for every
pointer blob instead: keeping an object nobody needs costs space, dropping one somebody
needs loses data.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.errors import MlxError
from gitmlx.format import pointer as pointers
from gitmlx.format.patterns import never_tracked
from gitmlx.format.pointer import MAX_POINTER_SIZE, Pointer
from gitmlx.git import attributes, batch
from gitmlx.git.plumbing import GitOutput, nul_records, run_git

SYMLINK = "120000"
GITLINK = "160000"

#: Given blob ids, the pointers each holds, as far as the caller already knows (the
#: clean filter's record: store/pointer_record.py); scans ask git only about the rest.
PointerLookup = Callable[[Collection[str]], Mapping[str, Pointer]]


@dataclass(frozen=True, slots=True)
class TrackedFile:
    """A path whose blob is a pointer. Slotted: scans of 100,000 files hold as many."""

    path: str
    pointer: Pointer
    mode: str = "100644"


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _sizes(cwd: Path, shas: Sequence[str]) -> dict[str, int]:
    """Blob sizes via one `cat-file --batch-check`, its answers read as they come."""
    if not shas:
        return {}
    args = ["cat-file", f"--batch-check={batch.HEADER_FORMAT}", "--buffer"]
    with GitOutput(args, cwd, "\n".join(shas).encode() + b"\n") as out:
        headers = (batch.parse_header(line) for line in out)
        return {h.sha: h.size for h in headers if h is not None and h.kind == "blob"}


def read_pointers(cwd: Path, shas: Iterable[str]) -> dict[str, Pointer]:
    """Parse the given (small) blobs via one `cat-file --batch`; non-pointers are omitted."""
    found: dict[str, Pointer] = {}
    for header, body in batch.small_blobs(cwd, list(dict.fromkeys(shas))):
        parsed = pointers.parse(body)
        if parsed is not None:
            found[header.sha] = parsed
    return found


def pointer_shas(cwd: Path, shas: Iterable[str]) -> set[str]:
    """Which of the given (small) blobs are pointers: `read_pointers` without a Pointer
    kept for each (the pre-push hook asks this of every file it pushes)."""
    return {h.sha for h, body in batch.small_blobs(cwd, list(dict.fromkeys(shas))) if pointers.parse(body) is not None}


def _with_shas(
    cwd: Path, entries: list[tuple[str, str, str]], sizes: dict[str, int], said: Mapping[str, Pointer] | None = None
) -> list[tuple[str, TrackedFile]]:
    """(blob sha, file) for each (mode, sha, path) entry whose blob is a pointer: those in
    `said` as it says, the others read from git when `sizes` says they are small."""
    said = said or {}
    small = [sha for _, sha, _ in entries if sha not in said and sizes.get(sha, MAX_POINTER_SIZE) < MAX_POINTER_SIZE]
    parsed = read_pointers(cwd, small)
    parsed.update(said)
    return [(sha, TrackedFile(path, parsed[sha], mode)) for mode, sha, path in entries if sha in parsed]


def _ask_record(
    cwd: Path, shas: Iterable[str], recorded: PointerLookup | None
) -> tuple[Mapping[str, Pointer], dict[str, int]]:
    """What `recorded` says of `shas`, and the sizes of the others (one cat-file, when any)."""
    distinct = dict.fromkeys(shas)
    said = recorded(distinct.keys()) if recorded is not None else {}
    return said, _sizes(cwd, [sha for sha in distinct if sha not in said])


def _collect(cwd: Path, entries: list[tuple[str, str, str]], sizes: dict[str, int]) -> list[TrackedFile]:
    return [f for _, f in _with_shas(cwd, entries, sizes)]


def _tracked(cwd: Path, files: list[TrackedFile], sources: Sequence[str | None]) -> list[TrackedFile]:
    """The files whose path has gitmlx's filter in one of `sources` (no git process when none)."""
    if not files:
        return files
    keep = attributes.tracked(cwd, (f.path for f in files), sources)
    return [f for f in files if f.path in keep]


def trees_of(cwd: Path, revs: Sequence[str]) -> list[str]:
    """The distinct root trees of `revs` (commits, tags), in order; one `cat-file`.

    Revs that name no tree (a tag of a blob, a missing object) are left out."""
    if not revs:
        return []
    out = run_git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        cwd=cwd,
        input="".join(f"{rev}^{{tree}}\n" for rev in revs).encode(),
    )
    trees = (line.split() for line in out.decode().splitlines())
    return list(dict.fromkeys(t[0] for t in trees if len(t) == 2 and t[1] == "tree"))


def ref_tips(cwd: Path) -> list[str]:
    """HEAD and what every ref names, each once (what `rev-list --all` starts from)."""
    out = run_git(["for-each-ref", "--format=%(objectname)"], cwd=cwd)
    head = run_git(["rev-parse", "-q", "--verify", "HEAD"], cwd=cwd, check=False).decode().split()
    return list(dict.fromkeys([*head, *out.decode().split()]))


#: Tree entries parsed, read and attribute-checked at a time by `iter_pointers_in_tree`.
CHUNK = 25_000


def pointers_in_tree(
    cwd: Path, rev: str = "HEAD", paths: Sequence[str] = (), *, tracked_only: bool = True
) -> list[TrackedFile]:
    """Pointer files in the tree of `rev` (empty when `rev` does not exist yet).

    With `tracked_only`, only paths that `rev`'s own attributes give gitmlx's filter.
    """
    return list(iter_pointers_in_tree(cwd, rev, paths, tracked_only=tracked_only))


def iter_pointers_in_tree(
    cwd: Path,
    rev: str = "HEAD",
    paths: Sequence[str] = (),
    *,
    tracked_only: bool = True,
    blobs: set[str] | None = None,
    recorded: PointerLookup | None = None,
) -> Iterator[TrackedFile]:
    """`pointers_in_tree`, CHUNK entries at a time (a cat-file and a check-attr each);
    the blob id of each file yielded goes into `blobs`, when given.

    `recorded`: the pointers of blobs the caller knows already. Then the tree is listed
    without sizes (`ls-tree -l` opens every blob), and git is asked for the sizes and
    contents of the other blobs only; none at all when it knows every one.

    Whole, a tree of 100,000 files held ~1.3 KiB per file at once (the entries, their
    sizes, cat-file's and check-attr's input and output, the parsed pointers): ~130 MiB.
    A tree of up to CHUNK files costs the same git processes as before."""
    entries: list[tuple[str, str, str]] = []
    sizes: dict[str, int] = {}
    for mode, sha, path, size in _tree_entries(cwd, rev, paths, with_sizes=recorded is None):
        if size >= MAX_POINTER_SIZE or (tracked_only and never_tracked(path)):
            continue  # not a pointer, or never an artifact: not worth keeping or reading
        entries.append((mode, sha, path))
        sizes[sha] = size
        if len(entries) >= CHUNK:
            yield from _chunk_of_tree(cwd, rev, entries, sizes, tracked_only, blobs, recorded)
            entries, sizes = [], {}
    yield from _chunk_of_tree(cwd, rev, entries, sizes, tracked_only, blobs, recorded)


def _chunk_of_tree(
    cwd: Path,
    rev: str,
    entries: list[tuple[str, str, str]],
    sizes: dict[str, int],
    tracked_only: bool,
    blobs: set[str] | None,
    recorded: PointerLookup | None = None,
) -> list[TrackedFile]:
    said: Mapping[str, Pointer] | None = None
    if recorded is not None:
        said, sizes = _ask_record(cwd, (sha for _, sha, _ in entries), recorded)
    found = _with_shas(cwd, entries, sizes, said)
    keep = attributes.tracked(cwd, (f.path for _, f in found), [rev]) if tracked_only and found else None
    chosen = [(sha, f) for sha, f in found if keep is None or f.path in keep]
    if blobs is not None:
        blobs.update(sha for sha, _ in chosen)
    return [f for _, f in chosen]


def files_in_tree(cwd: Path, rev: str, paths: Sequence[str] = ()) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """The regular files (not symlinks or submodules) in the tree of `rev`, as (mode, blob,
    path), and each blob's size; nothing when `rev` does not exist yet. One ls-tree."""
    entries, sizes = [], {}
    for mode, sha, path, size in _tree_entries(cwd, rev, paths):
        entries.append((mode, sha, path))
        sizes[sha] = size
    return entries, sizes


def _tree_entries(
    cwd: Path, rev: str, paths: Sequence[str], with_sizes: bool = True
) -> Iterator[tuple[str, str, str, int]]:
    """(mode, blob, path, size) of each regular file in the tree of `rev` (nothing when
    `rev` does not exist), from one `ls-tree -r -l -z` read as it comes; without
    `with_sizes`, from `ls-tree -r -z`, which reads trees only, and the size is -1."""
    sized = ["-l"] if with_sizes else []
    with GitOutput(["ls-tree", "-r", *sized, "-z", "--full-tree", rev, "--", *paths], cwd, check=False) as out:
        for record in nul_records(out):
            meta, _, path = record.partition(b"\t")
            mode, kind, sha, *size = meta.decode().split()
            if kind == "blob" and mode != SYMLINK and size != ["-"]:
                yield sys.intern(mode), sha, _decode(path), int(size[0]) if size else -1


def pointers_in_index(cwd: Path, paths: Sequence[str] = (), *, tracked_only: bool = True) -> list[TrackedFile]:
    """Pointer files staged in the index (stage 0 only); `paths` are literal, not globs.

    With `tracked_only`, only paths that the work tree's attributes give gitmlx's filter
    (then the index's, as `git add` and `git status` read them). Read CHUNK entries at a
    time, as `iter_pointers_in_tree` reads a tree.
    """
    found: list[TrackedFile] = []
    entries: list[tuple[str, str, str]] = []
    for entry in _index_entries(cwd, paths):
        entries.append(entry)
        if len(entries) >= CHUNK:
            found += _chunk_of_index(cwd, entries, tracked_only)
            entries = []
    return found + _chunk_of_index(cwd, entries, tracked_only)


def _chunk_of_index(cwd: Path, entries: list[tuple[str, str, str]], tracked_only: bool) -> list[TrackedFile]:
    found = _collect(cwd, entries, _sizes(cwd, [sha for _, sha, _ in entries]))
    return _tracked(cwd, found, [attributes.WORK_TREE]) if tracked_only else found


def files_in_index(cwd: Path, paths: Sequence[str] = ()) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """The regular files staged in the index (stage 0), as (mode, blob, path), and each
    blob's size; `paths` are literal. Two git processes (ls-files, cat-file)."""
    entries = list(_index_entries(cwd, paths))
    return entries, _sizes(cwd, [sha for _, sha, _ in entries])


def _index_entries(cwd: Path, paths: Sequence[str]) -> Iterator[tuple[str, str, str]]:
    """(mode, blob, path) of each regular file staged in the index (stage 0); one ls-files."""
    with GitOutput(["ls-files", "-s", "-z", "--", *(f":(literal,top){p}" for p in paths)], cwd) as out:
        for record in nul_records(out):
            meta, _, path = record.partition(b"\t")
            mode, sha, stage = meta.decode().split()
            if stage == "0" and mode != SYMLINK and mode != GITLINK:
                yield sys.intern(mode), sha, _decode(path)


def changed_entries(out: bytes) -> list[tuple[str, str, str]]:
    """`diff-tree -r -z --no-renames --no-commit-id` output → the (mode, blob, path) that
    each change leaves, each once, in order; deletions (a zero blob id) left out.

    With -z a change is `:<old mode> <new mode> <old id> <new id> <status>` NUL `<path>` NUL.
    """
    return _changes(iter(out.split(b"\0")))


def _changes(records: Iterator[bytes], known: Container[str] = ()) -> list[tuple[str, str, str]]:
    """`changed_entries` of diff-tree's NUL-terminated records, leaving out the blobs in
    `known` as they are read."""
    entries: dict[tuple[str, str, str], None] = {}
    for meta in records:
        if not meta.startswith(b":"):
            continue
        path = next(records, None)
        if path is None:
            break
        fields = meta[1:].split()
        if len(fields) == 5 and fields[3].strip(b"0") and (sha := fields[3].decode()) not in known:
            entries[(sys.intern(fields[1].decode()), sha, _decode(path))] = None
    return list(entries)


def first_parent_pairs(rev_list_parents: bytes) -> bytes:
    """`rev-list --parents` lines → `<commit> [<first parent>]` lines for `diff-tree --stdin`."""
    return b"".join(b" ".join(line.split(b" ")[:2]) + b"\n" for line in rev_list_parents.splitlines() if line)


def _changes_in_range(
    cwd: Path, include: Sequence[str], exclude: Sequence[str], known: Container[str] = ()
) -> list[tuple[str, str, str]]:
    """Every (mode, blob, path) that a commit of the range brings, compared with its first
    parent (a root commit or a shallow boundary: with the empty tree), but blobs in
    `known`; two git processes, diff-tree's output read as it comes.

    A merge's first-parent diff holds what it brings from its other parents, and those
    branches' commits that are in the range are listed themselves, so no blob a commit of
    the range introduces is missed (the other parents' diffs would only repeat them).
    """
    commits = run_git(["rev-list", "--parents", *include, "--not", *exclude], cwd=cwd)
    if not commits.strip():
        return []
    args = ["diff-tree", "--stdin", "-r", "-z", "--root", "--no-renames", "--no-commit-id", "--no-abbrev"]
    with GitOutput(args, cwd, first_parent_pairs(commits)) as out:
        return _changes(nul_records(out), known)


@dataclass(frozen=True)
class RangePointers:
    """The pointer blobs a range of commits brings, each once: artifacts, and pointer text
    anywhere else (a path without gitmlx's filter, a symlink's target)."""

    artifacts: list[TrackedFile]
    elsewhere: list[TrackedFile]
    #: Only when asked (`range_pointers`): regular files of the range whose path has
    #: gitmlx's own filter (`filter=mlx`) but whose blob is not a pointer, as (path, size).
    unfiltered: list[tuple[str, int]] = field(default_factory=list)


def range_pointers(
    cwd: Path,
    include: Sequence[str],
    exclude: Sequence[str],
    tracked_at: Sequence[str],
    known: Container[str] = (),
    unfiltered: bool = False,
    recorded: PointerLookup | None = None,
) -> RangePointers:
    """Pointers in the files brought by the commits that `include` reaches and `exclude` does not.

    `exclude` items are passed after `--not`, so they may be revs or `--remotes=NAME`.
    An artifact is a regular file whose path the attributes of one of `tracked_at` (one
    or more commits or trees) give gitmlx's filter. Files are listed by `diff-tree`, with
    every path and mode: `rev-list --objects` names one path per blob and no mode, so
    pointer text copied to an untracked path could hide the tracked file it came from, and
    a symlink's target would pass for a file. History does not say which attributes held
    in the commits between, so `tracked_at` judges them all; what they leave out is in
    `elsewhere`, for a caller that wants the objects it can (the pre-push hook uploads
    those the store has). Blobs in `known` (ids the caller has already, as artifacts of
    the pushed tips) are left out before they are read: a first push of 100,000 files
    would read each twice. With `unfiltered`, also the files of `RangePointers.unfiltered`
    (judged by the same attributes, in the same check-attr): the pre-push hook's warning
    about content committed without the filter then costs no scan of its own. `recorded`:
    as in `iter_pointers_in_tree` (git reads only the blobs it does not know).
    """
    entries = _changes_in_range(cwd, include, exclude, known) if include else []
    pointers_known, sizes = _ask_record(cwd, (sha for _, sha, _ in entries), recorded)
    found = _with_shas(cwd, entries, sizes, pointers_known)
    regular = [f.path for _, f in found if f.mode not in (SYMLINK, GITLINK)]
    plain: dict[str, str] = {}
    if unfiltered:
        pointer_blobs = {sha for sha, _ in found}
        plain = {
            path: sha
            for mode, sha, path in entries
            if mode not in (SYMLINK, GITLINK) and sha not in pointer_blobs and not never_tracked(path)
        }
    if plain:
        values = attributes.filters_by_source(cwd, list(dict.fromkeys([*regular, *plain])), tracked_at)
        keep = {p for p in regular if not never_tracked(p) and values[p] & attributes.ARTIFACT_FILTERS}
    else:
        keep = attributes.tracked(cwd, regular, tracked_at) if regular else set()
    artifacts: dict[str, TrackedFile] = {}
    for sha, f in found:
        if f.path in keep and f.mode not in (SYMLINK, GITLINK):
            artifacts.setdefault(sha, f)
    elsewhere: dict[str, TrackedFile] = {}
    for sha, f in found:
        if sha not in artifacts:
            elsewhere.setdefault(sha, f)
    raw = [(path, sizes.get(sha, 0)) for path, sha in sorted(plain.items()) if "mlx" in values[path]] if plain else []
    return RangePointers(list(artifacts.values()), list(elsewhere.values()), raw)


def pointers_in_range(
    cwd: Path, include: Sequence[str], exclude: Sequence[str] = (), *, tracked_at: Sequence[str] | None
) -> list[TrackedFile]:
    """Pointers in blobs that the commits `include` reach and `exclude` do not.

    `tracked_at`: the artifacts of `range_pointers`. None: every pointer blob
    `rev-list --objects` lists, whatever its path and mode, for keep-sets, which must not
    miss an object; a blob seen under several paths is reported once, with one of them.
    """
    if tracked_at is not None:
        return range_pointers(cwd, include, exclude, tracked_at).artifacts
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
        ["cat-file", f"--batch-check={batch.HEADER_FORMAT}"],
        cwd=cwd,
        input=spec.encode("utf-8", "surrogateescape") + b"\n",
    )
    header = batch.parse_header(out)
    if header is None:
        return None
    sha, kind, size = header.sha, header.kind, header.size
    if kind != "blob":
        what = {"tree": "a directory", "commit": "a submodule"}.get(kind, f"a {kind}")
        raise MlxError(f"'{path}' at '{rev}' is {what}, not a file", "name a file in the repository")
    pointer = read_pointers(cwd, [sha]).get(sha) if size < MAX_POINTER_SIZE else None
    if pointer is not None and not _artifact_at(cwd, rev, path):
        pointer = None  # pointer text where git would not smudge it: ordinary content
    return BlobAt(sha, size, pointer)


def _artifact_at(cwd: Path, rev: str, path: str) -> bool:
    """Whether `path` at `rev` is a regular file whose `filter` attribute (as that commit
    says) names gitmlx's driver: a symlink or an untracked path is never an artifact."""
    entry = run_git(["ls-tree", "-z", rev, "--", path], cwd=cwd).split(b"\0")[0]
    mode = entry.split(b" ", 1)[0]
    if mode not in (b"100644", b"100755") or never_tracked(path):
        return False
    return attributes.filters(cwd, [path], source=rev).get(path) in attributes.ARTIFACT_FILTERS
