"""Two gitmlx commands at once in one clone (#21 acceptance 4): two `pull`s, a `pull` and a
`fetch`, a `checkout` and a `prune`. No exit 3 (an internal error: "database is locked"
came from the WAL switch in 3 of 21 trials), no crash log, and every file identical after.

CI runs 3 trials of each; `-m slow` runs 50.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from tests.support.commands import git
from tests.support.content import write_random
from tests.support.integrity import take_crash_logs
from tests.support.repos import Repos, commit_all
from tests.support.trials import at_once

FILES = {f"d{i}/m{i}.bin": 256 * 1024 + i for i in range(12)}

PAIRS = {
    "pull+pull": (["git", "mlx", "pull"], ["git", "mlx", "pull"]),
    "pull+fetch": (["git", "mlx", "pull"], ["git", "mlx", "fetch"]),
    "checkout+prune": (["git", "mlx", "checkout"], ["git", "mlx", "prune"]),
}


def published(repos: Repos) -> dict[str, str]:
    shas = {path: write_random(repos.work / path, size, path) for path, size in FILES.items()}
    commit_all(repos.work, "artifacts")
    git("push", "-q", "origin", "HEAD:main", cwd=repos.work)
    return shas


def content_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("trials", [pytest.param(3, id="ci"), pytest.param(50, id="full", marks=pytest.mark.slow)])
def test_two_commands_at_once_in_one_clone(repos: Repos, sealed, pair: str, trials: int) -> None:
    shas = published(repos)
    first, second = PAIRS[pair]
    problems: list[str] = []
    for n in range(trials):
        copy = sealed.root / f"copy-{n}"
        git("clone", "-q", repos.remote, copy, cwd=sealed.root, env={"GIT_MLX_SKIP_SMUDGE": "1"})
        if pair == "checkout+prune":
            git("mlx", "fetch", cwd=copy)  # checkout places from the store, prune thins it
        results = at_once((first, copy), (second, copy))
        for r in results:
            if r.returncode not in (0, 1) or "Traceback" in r.stdout + r.stderr:
                problems.append(f"trial {n}: {' '.join(r.args)} exited {r.returncode}\n{r.stderr[-2000:]}")
        problems += [f"trial {n}: crash log\n{log[-2000:]}" for log in take_crash_logs(sealed.tmp)]
        if pair == "pull+fetch":
            git("mlx", "checkout", cwd=copy)  # fetch alone places nothing; the pull may have gone first
        for path, sha in shas.items():
            if content_of(copy / path) != sha:
                problems.append(f"trial {n}: '{path}' differs")
        if git("status", "--porcelain", cwd=copy).stdout != "":
            problems.append(f"trial {n}: status not clean")
        shutil.rmtree(copy)
    assert not problems, f"{len(problems)} problem(s) in {trials} trials:\n" + "\n".join(problems[:5])
