"""Long histories: a push of one commit and `git mlx status` do the same work whatever the
history's length; prune and gc walk it once and say what they are doing. git's own trace
(GIT_TRACE) is the witness: the commands run, and whether each history walk is bounded.
bench/history.py measures the times (bench/README.md, "Long histories")."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from tests.support.commands import git, mlx
from tests.support.content import write_random
from tests.support.history import HistoryShape, build_history
from tests.support.repos import commit_all, make_repo_with_bare_remote

WALKS = ("rev-list", "log")


def traced(repo: Path, sealed, *args: str) -> tuple[list[str], str]:
    """The git commands `git *args` ran (itself first), and its stderr."""
    trace = sealed.tmp / "trace.log"
    trace.unlink(missing_ok=True)
    result = git(*args, cwd=repo, env={"GIT_TRACE": str(trace)})
    return re.findall(r"trace: built-in: git (.*)", trace.read_text()), result.stderr


def shapes(calls: list[str], root: Path) -> list[str]:
    """The commands with object ids and the sandbox's path blotted out."""
    return [re.sub(r"\b[0-9a-f]{40}\b", "<sha>", c.replace(str(root), "<root>")) for c in calls]


def unbounded_walks(calls: list[str]) -> list[str]:
    """History walks that may visit every commit: neither `--no-walk` nor anything after
    `--not` to stop at."""
    found = []
    for call in calls:
        words = call.split()
        if words[0] not in WALKS or "--no-walk" in words:
            continue
        if "--not" not in words or words.index("--not") == len(words) - 1:
            found.append(call)
    return found


def settle_index(work: Path) -> None:
    """Leave no "racily clean" file (as new as the index, to the file system's clock
    tick): git's diff would clean it again, and the filter's own git commands would land
    in the trace. Files dated an hour back are re-read once by `git status`, which then
    writes their stat data into a newer index."""
    past = time.time() - 3600
    for path in work.iterdir():
        if path.is_file():
            os.utime(path, (past, past))
    git("status", "--porcelain", cwd=work)


def pushed_history(root: Path, commits: int) -> Path:
    repos = make_repo_with_bare_remote(root)
    build_history(repos.work, HistoryShape(commits))
    git("push", "-q", "origin", "main", cwd=repos.work)
    return repos.work


def test_push_of_one_commit_and_status_run_the_same_git_commands_at_10_and_200_commits(sealed) -> None:
    seen: dict[int, dict[str, list[str]]] = {}
    for commits in (10, 200):
        root = sealed.root / f"n{commits}"
        root.mkdir()
        work = pushed_history(root, commits)
        write_random(work / "h000.bin", 2048, "one more")
        commit_all(work, "one more")
        push, pushed = traced(work, sealed, "push", "origin", "main")
        # The remote is asked only about what the remote record does not vouch for.
        assert "uploaded 1 objects" in pushed and "; 1 asked of the remote)" in pushed, pushed
        settle_index(work)
        status, _ = traced(work, sealed, "mlx", "status")
        assert not unbounded_walks(push + status), unbounded_walks(push + status)
        seen[commits] = {"push": shapes(push, root), "status": shapes(status, root)}
    assert seen[10] == seen[200]


def test_gc_and_prune_walk_the_history_once_and_say_what_they_are_doing(sealed) -> None:
    work = pushed_history(sealed.root, 30)

    calls, stderr = traced(work, sealed, "mlx", "gc", "--remote")
    # (git fetch's own connectivity check reads its tips on stdin: not gitmlx's walk)
    walks = [c for c in calls if c.startswith("rev-list --objects") and "--stdin" not in c]
    assert len(walks) == 1, walks
    assert "gc: fetching the refs of git remote 'origin'..." in stderr
    assert "gc: listing the objects every ref reaches" in stderr

    pruned = mlx("prune", "--dry-run", cwd=work)
    assert "prune: listing the objects of commits no remote-tracking ref reaches..." in pruned.stderr
    assert "prune: asking remote" in pruned.stderr
    quiet = mlx("prune", "--dry-run", cwd=work, env={"GIT_MLX_NO_PROGRESS": "1"})
    assert "prune:" not in quiet.stderr
