"""Rewriting history with git-filter-repo: the one module that imports it.

Owns: loading git-filter-repo (a declared dependency; an error with the install hint when
it is missing), the options it runs with, its metadata directory, running it over given
refs with a callback per commit, and the translation between its commit objects and the
plain values below.
Must not: decide what a commit's files become (migrate/history.py does), or print.

It lives under git/ because filter-repo starts git itself (`git fast-export | callbacks |
git fast-import`, then a reset of the work tree), and only git/ runs git.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from gitmlx.errors import MlxError

#: A blob in the rewrite: an existing blob's hex id, or the mark of one added by AddBlob.
BlobRef = bytes | int

#: A parent in the rewrite: the mark of a rewritten commit, or the hex id of one outside it.
CommitRef = bytes | int


@dataclass(frozen=True)
class FileChange:
    """One change a commit makes: `M` (the path now holds `blob` with `mode`, such as
    b"100644") or `D` (the path is gone: no blob, no mode)."""

    kind: bytes
    path: bytes
    blob: BlobRef | None = None
    mode: bytes | None = None


@dataclass(frozen=True)
class Commit:
    """A commit as fast-export lists it: its changes are against its first parent."""

    mark: int
    parents: tuple[CommitRef, ...]
    changes: tuple[FileChange, ...]


#: Adds a blob with these bytes to the rewritten history; returns its mark.
AddBlob = Callable[[bytes], int]

#: Given a commit, returns the changes it is to make instead.
EditCommit = Callable[[Commit, AddBlob], list[FileChange]]


def _load() -> ModuleType:
    try:
        import git_filter_repo
    except ImportError as exc:
        raise MlxError(
            "git-filter-repo is not installed (needed to rewrite history)",
            "install it with 'pip install git-filter-repo' in gitmlx's environment",
        ) from exc
    return git_filter_repo


def ensure_installed() -> None:
    """Raise the install hint now, before any other check or change."""
    _load()


def start_fresh(git_dir: Path) -> Path:
    """Forget an earlier run; return filter-repo's metadata directory (commit-map inside).

    Each rewrite is a fresh one: the marker an earlier run leaves would make filter-repo
    treat this one as a continuation (and prompt on stdin when that run is over a day old).
    """
    metadata = git_dir / "filter-repo"
    with contextlib.suppress(FileNotFoundError):
        (metadata / "already_ran").unlink()
    return metadata


@contextlib.contextmanager
def _in_directory(path: Path) -> Iterator[None]:
    """filter-repo works on the repository in the current directory."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def rewrite(top: Path, refs: Sequence[str], edit: EditCommit) -> None:
    """Rewrite `refs` (full ref names, or `--all`), each commit's changes as `edit` says.

    No blob callback is given, so fast-export runs without blob data: a change names its
    blob by id and only the blobs `edit` adds pass through fast-import's stream. Empty and
    degenerate commits are kept, so the history keeps its shape.
    """
    fr = _load()
    args = fr.FilteringOptions.parse_args(
        ["--force", "--quiet", "--prune-empty", "never", "--prune-degenerate", "never", "--refs", "HEAD"]
    )
    args.refs = list(refs)  # set after parsing: argparse would take '--all' for an option
    repo_filter = None  # set before run(), which is when the callbacks come

    def add_blob(data: bytes) -> int:
        assert repo_filter is not None
        blob = fr.Blob(data)
        repo_filter.insert(blob)
        return blob.id

    def on_commit(commit, _metadata) -> None:  # commit: git_filter_repo.Commit
        changes = tuple(FileChange(c.type, c.filename, c.blob_id, c.mode) for c in commit.file_changes)
        edited = edit(Commit(commit.id, tuple(commit.parents), changes), add_blob)
        commit.file_changes = [fr.FileChange(c.kind, c.path, c.blob, c.mode) for c in edited]

    captured = io.StringIO()
    try:
        with _in_directory(top), contextlib.redirect_stdout(captured):
            repo_filter = fr.RepoFilter(args, commit_callback=on_commit)
            repo_filter.run()
    except SystemExit as exc:
        said = exc.code if isinstance(exc.code, str) else (captured.getvalue().strip().splitlines() or ["?"])[-1]
        raise MlxError(f"git-filter-repo failed: {said.strip()}", "see the messages above") from None
