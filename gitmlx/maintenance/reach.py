"""Which objects git still needs: the keep-list of `prune`, the reachable set of
`gc --remote`, and the paths that use an object (for `fsck` messages).

Owns: the git questions maintenance asks (refs, worktrees, stashes, dates), answered
with a bounded number of git processes per question, whatever the history's size.
Must not: touch the store or a remote.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitmlx.errors import MlxError
from gitmlx.git import scan
from gitmlx.git.plumbing import run_git

#: Revisions per rev-list call, so a long list never exceeds the command-line limit.
_REVS_PER_CALL = 500


def _oids(files: Iterable[scan.TrackedFile]) -> set[str]:
    return {f.pointer.oid for f in files}


def _objects_of(top: Path, revs: Sequence[str]) -> set[str]:
    """Oids in the trees of exactly these commits (no history walk)."""
    found: set[str] = set()
    for i in range(0, len(revs), _REVS_PER_CALL):
        found |= _oids(scan.pointers_in_range(top, ["--no-walk", *revs[i : i + _REVS_PER_CALL]], tracked_at=None))
    return found


def _lines(out: bytes) -> list[str]:
    return [line for line in out.decode("utf-8", "surrogateescape").splitlines() if line]


def has_head(top: Path) -> bool:
    return bool(run_git(["rev-parse", "-q", "--verify", "HEAD^{commit}"], cwd=top, check=False).strip())


@dataclass(frozen=True)
class Worktree:
    path: Path
    head: str | None  # None: unborn branch or a bare entry
    bare: bool


def worktrees(top: Path) -> list[Worktree]:
    """Every worktree of the repository (`git worktree list --porcelain`), this one included."""
    out = run_git(["worktree", "list", "--porcelain"], cwd=top, check=False)
    found = []
    for block in out.decode("utf-8", "surrogateescape").split("\n\n"):
        fields = dict(line.partition(" ")[::2] for line in block.splitlines() if line)
        if "worktree" in fields:
            head = fields.get("HEAD", "").strip("0") and fields["HEAD"]
            found.append(Worktree(Path(fields["worktree"]), head or None, "bare" in fields))
    return found


def stash_commits(top: Path) -> list[str]:
    """Every stash entry (refs/stash and its reflog) with its parents: the work-tree commit,
    HEAD at the time, the index commit and the untracked-files commit."""
    out = run_git(["log", "-g", "--format=%H %P", "refs/stash", "--"], cwd=top, check=False)
    return list(dict.fromkeys(sha for line in _lines(out) for sha in line.split()))


@dataclass(frozen=True)
class KeepList:
    """Oids `prune` must keep, by reason (an oid may have several)."""

    tips: set[str]  # HEAD, branch and tag tips, other worktrees' HEADs, stashes
    index: set[str]  # every worktree's index
    unpushed: set[str]  # commits no remote-tracking ref reaches
    recent: set[str]  # commits of the last N days, and the state just before them

    @property
    def all(self) -> set[str]:
        return self.tips | self.index | self.unpushed | self.recent


def _quiet(_: str) -> None:
    pass


def keep_list(
    top: Path, offset_days: float, now: float | None = None, phase: Callable[[str], None] = _quiet
) -> KeepList:
    """What no prune may delete: see docs/local-store.md, "Prune". `phase` is told what
    each step is about to do. Neither walk covers the whole history: `unpushed` stops at
    the remote-tracking refs, `recent` at the cutoff date."""
    now = time.time() if now is None else now
    phase("reading the trees of HEAD, branch and tag tips, worktrees and stashes")
    trees_of = worktrees(top)
    trees = [wt.head for wt in trees_of if wt.head]
    if has_head(top):
        trees.append("HEAD")
    tips = _oids(
        scan.pointers_in_range(top, ["--no-walk", "--branches", "--tags", *dict.fromkeys(trees)], tracked_at=None)
    )
    tips |= _objects_of(top, stash_commits(top))

    phase("reading every worktree's index")
    index: set[str] = set()
    for wt in trees_of:
        if not wt.bare and wt.path.is_dir():
            index |= _oids(scan.pointers_in_index(wt.path, tracked_only=False))

    # Reachable from local refs (and every worktree's HEAD) but from no remote-tracking ref.
    phase("listing the objects of commits no remote-tracking ref reaches")
    unpushed = _oids(scan.pointers_in_range(top, ["--all"], ["--remotes"], tracked_at=None))

    cutoff = int(now - offset_days * 86400)
    phase(f"reading the trees of the commits of the last {offset_days:g} day(s)")
    out = run_git(["rev-list", "--all", f"--since=@{cutoff}", "--parents"], cwd=top, check=False)
    commits: dict[str, None] = {}
    parents: dict[str, None] = {}
    for line in _lines(out):
        sha, *rest = line.split()
        commits[sha] = None
        parents.update(dict.fromkeys(rest))
    # The parents just outside the window are the state the window started from (what a
    # checkout of the cutoff date gives), as Git LFS's prune offset keeps.
    recent = _objects_of(top, list(commits) + [p for p in parents if p not in commits])
    return KeepList(tips, index, unpushed, recent)


def paths_by_oid(top: Path, oids: Iterable[str]) -> dict[str, list[str]]:
    """The paths that use each oid: at HEAD and in the index, else anywhere in history."""
    wanted = set(oids)
    found: dict[str, list[str]] = {}
    if not wanted:
        return found
    near = scan.pointers_in_tree(top, "HEAD", tracked_only=False) if has_head(top) else []
    try:
        near += scan.pointers_in_index(top, tracked_only=False)
    except MlxError:
        pass  # a bare repository has no index
    for f in near:
        if f.pointer.oid in wanted and f.path not in found.setdefault(f.pointer.oid, []):
            found[f.pointer.oid].append(f.path)
    if wanted - set(found):
        for f in scan.pointers_in_range(top, ["--all"], tracked_at=None):
            if f.pointer.oid in wanted and f.pointer.oid not in found:
                found[f.pointer.oid] = [f.path]
    return found


def remote_refs(top: Path, git_remote: str) -> list[str]:
    """Every object id the git remote's refs name (`git ls-remote`), fetched so that the
    history they reach is local. Refuses when something cannot be fetched: gc must see
    everything a ref of the remote reaches before it may call anything unreachable."""
    run_git(["fetch", "--quiet", git_remote], cwd=top)
    shas = sorted({line.split("\t")[0] for line in _lines(run_git(["ls-remote", git_remote], cwd=top))})
    missing = _missing(top, shas)
    for i in range(0, len(missing), _REVS_PER_CALL):
        run_git(["fetch", "--quiet", "--no-tags", git_remote, *missing[i : i + _REVS_PER_CALL]], cwd=top)
    still = _missing(top, shas)
    if still:
        raise MlxError(
            f"cannot fetch {len(still)} object(s) that refs of git remote '{git_remote}' name "
            f"(first: {still[0][:10]}); gc must see everything the remote's refs reach",
            f"check 'git ls-remote {git_remote}' and 'git fetch {git_remote}', then run gc again",
        )
    return shas


def _missing(top: Path, shas: Sequence[str]) -> list[str]:
    if not shas:
        return []
    out = run_git(["cat-file", "--batch-check"], cwd=top, input="\n".join(shas).encode() + b"\n")
    return [line.split()[0] for line in _lines(out) if line.endswith(" missing")]


def reachable(top: Path, git_remotes: Sequence[str], phase: Callable[[str], None] = _quiet) -> set[str]:
    """Oids any ref of these git remotes reaches, plus everything local refs, tags, stashes
    and worktree HEADs reach (to be conservative). `phase` is told what each step is about
    to do.

    The history is walked once: the remote's refs are walked together with `--all`, and
    any past the first call's share only as far as `--all` and the earlier ones do not
    reach (most are remote-tracking refs, which `--all` already holds). Those chunks
    exclude only `--all`, so the command line stays short."""
    roots: list[str] = []
    for name in git_remotes:
        phase(f"fetching the refs of git remote '{name}'")
        roots += remote_refs(top, name)
    phase("listing the objects every ref reaches (one walk of the history)")
    chunks = [roots[i : i + _REVS_PER_CALL] for i in range(0, len(roots), _REVS_PER_CALL)] or [[]]
    found = _oids(scan.pointers_in_range(top, ["--all", *chunks[0]], tracked_at=None))
    for chunk in chunks[1:]:
        found |= _oids(scan.pointers_in_range(top, chunk, ["--all"], tracked_at=None))
    return found
