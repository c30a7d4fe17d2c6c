"""docs/ci.md's recipes, run as written: each `<!-- ci-recipe: NAME -->` YAML block is
read, and its checkout, cache and shell steps are played the way the CI service plays
them, in a fresh HOME and work folder, against moto. Each recipe runs twice: the second
job starts from the cache the first saved, and must restore the same files with S3
unreachable (everything comes from the cache).

Left out: the `Install gitmlx` step (it downloads the package; `.ci/check-install` tests
installing the wheel): this interpreter's `git-mlx` is on PATH instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.support.commands import git
from tests.support.content import KIB, write_random
from tests.support.repos import Repos, assert_content, assert_pointer, commit_all
from tests.support.s3 import S3Setup, aws_variables, free_port, make_s3_repo
from tests.support.sealed import sealed_env

DOC = Path(__file__).resolve().parents[2] / "docs" / "ci.md"
ARTIFACTS = {"models/best/model.bin": 300 * KIB, "models/best/config.bin": 2 * KIB, "models/old/model.bin": 200 * KIB}


def recipe(name: str) -> dict:
    """The YAML block that follows `<!-- ci-recipe: NAME -->` in docs/ci.md."""
    text = DOC.read_text()
    found = re.search(rf"<!-- ci-recipe: {re.escape(name)} -->\s*```yaml\n(.*?)```", text, re.S)
    assert found, f"docs/ci.md has no recipe '{name}'"
    return yaml.safe_load(found.group(1))


class Job:
    """One CI job's machine: a fresh HOME, a work folder, the job's environment."""

    def __init__(self, root: Path, secret: str, variables: dict[str, str]) -> None:
        self.root = root
        for name in ("home", "tmp", "work"):
            (root / name).mkdir(parents=True)
        env = {k: v for k, v in sealed_env(root / "home", root / "tmp", root).items() if not k.startswith("AWS_")}
        self.env = {**env, **aws_variables(secret), **variables}
        self.work = root / "work"
        self.log: list[str] = []

    def shell(self, script: str, extra: dict[str, str] | None = None) -> None:
        proc = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=self.work,
            env={**self.env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )
        self.log.append(f"$ {script}\n{proc.stdout}{proc.stderr}")
        assert proc.returncode == 0, "\n".join(self.log)

    def checkout(self, remote: Path, extra: dict[str, str] | None = None) -> None:
        clone = subprocess.run(
            ["git", "clone", "-q", str(remote), str(self.work)],
            env={**self.env, **(extra or {})},
            capture_output=True,
            text=True,
        )
        assert clone.returncode == 0, clone.stderr


def restore(cache: Path, key: str, prefixes: list[str], into: Path) -> bool:
    """actions/cache's restore: the exact key, else the newest entry under a prefix."""
    exact = cache / key
    found = exact if exact.is_dir() else None
    if found is None:
        entries = list(cache.iterdir()) if cache.is_dir() else []
        candidates = [p for p in entries if any(p.name.startswith(x) for x in prefixes)]
        found = max(candidates, key=lambda p: p.stat().st_mtime_ns, default=None)
    if found is not None:
        shutil.copytree(found, into, dirs_exist_ok=True)
    return found == exact


def save(cache: Path, key: str, path: Path) -> None:
    if path.is_dir() and not (cache / key).exists():
        shutil.copytree(path, cache / key)


def github_job(doc: dict, job: Job, remote: Path, cache: Path, secrets: dict[str, str]) -> bool:
    """Play the workflow's one job; whether its cache restore was an exact hit."""
    (spec,) = doc["jobs"].values()
    outputs: dict[str, dict[str, str]] = {}

    def expand(text: str) -> str:
        def value(match: re.Match[str]) -> str:
            kind, *rest = match.group(1).strip().split(".")
            if kind == "secrets":
                return secrets[rest[0]]
            assert kind == "steps" and rest[1] == "outputs", match.group(0)
            return outputs[rest[0]][rest[2]]

        return re.sub(r"\$\{\{(.*?)\}\}", value, str(text))

    job.env.update({k: expand(v) for k, v in spec.get("env", {}).items()})
    runner_temp = job.root / "runner-temp"
    runner_temp.mkdir()
    job.env["RUNNER_TEMP"] = str(runner_temp)
    saves: list[Callable[[], None]] = []
    hit = False
    for step in spec["steps"]:
        step_env = {k: expand(v) for k, v in step.get("env", {}).items()}
        uses = step.get("uses", "")
        if uses.startswith("actions/checkout@"):
            job.checkout(remote, step_env)
        elif uses.startswith("actions/cache@"):
            key = expand(step["with"]["key"])
            path = Path(step["with"]["path"].replace("~", job.env["HOME"], 1))
            prefixes = str(step["with"].get("restore-keys", "")).split()
            hit = restore(cache, key, prefixes, path)
            saves.append(lambda key=key, path=path: save(cache, key, path))
        elif step.get("name") == "Install gitmlx":
            assert step["run"].startswith("pipx install "), step
        else:
            output = runner_temp / f"output-{len(outputs)}"
            output.touch()
            job.shell(expand(step["run"]), {**step_env, "GITHUB_OUTPUT": str(output)})
            lines = output.read_text().splitlines()
            outputs[step.get("id", "")] = dict(line.split("=", 1) for line in lines if "=" in line)
    for post in saves:
        post()
    return hit


def gitlab_job(doc: dict, job: Job, remote: Path, cache: Path) -> bool:
    """Play the `evaluate` job of .gitlab-ci.yml; whether its cache was restored."""
    spec = doc["evaluate"]
    job.env.update({k: str(v) for k, v in spec.get("variables", {}).items()})
    job.env.update({"CI_PROJECT_DIR": str(job.work), "CI_COMMIT_REF_SLUG": "main"})
    job.checkout(remote)
    key = spec["cache"]["key"].replace("$CI_COMMIT_REF_SLUG", "main")
    hit = (cache / key).is_dir()
    if hit:
        shutil.copytree(cache / key, job.work, dirs_exist_ok=True)
    lines = [line for line in spec["before_script"] + spec["script"] if not line.startswith("pip install ")]
    assert len(lines) == len(spec["before_script"]) + len(spec["script"]) - 1, "one install line (left out)"
    job.shell("\n".join(lines))
    saved = cache / key
    shutil.rmtree(saved, ignore_errors=True)
    for path in spec["cache"]["paths"]:
        if (job.work / path).exists():
            shutil.copytree(job.work / path, saved / path)
    return hit


def check_restored(work: Path, shas: dict[str, str]) -> None:
    for path in ("models/best/model.bin", "models/best/config.bin"):
        assert_content(work, path, shas[path])
    oid, _ = assert_pointer(work, "models/old/model.bin")  # not asked for: still a pointer
    assert oid == shas["models/old/model.bin"]


@pytest.fixture
def published(s3: S3Setup, sealed) -> tuple[Repos, dict[str, str]]:
    repos = make_s3_repo(sealed.root, s3.url(), s3.endpoint)
    shas = {path: write_random(repos.work / path, size, path) for path, size in ARTIFACTS.items()}
    commit_all(repos.work, "models")
    git("push", "-q", "origin", "main", cwd=repos.work)
    return repos, shas


def unreachable(repos: Repos) -> None:
    """Point the committed .mlxconfig at a closed port: only a cache can serve the next job."""
    config = repos.work / ".mlxconfig"
    config.write_text(re.sub(r"http://127\.0\.0\.1:\d+", f"http://127.0.0.1:{free_port()}", config.read_text()))
    git("commit", "-q", "-am", "remote gone", cwd=repos.work)
    # --no-verify: the pre-push hook would (rightly) refuse, unable to reach the remote.
    git("push", "-q", "--no-verify", "origin", "main", cwd=repos.work)


def test_github_actions_recipe_runs_and_its_cache_serves_the_next_job(s3: S3Setup, sealed, published) -> None:
    repos, shas = published
    doc, cache = recipe("github-actions"), sealed.root / "gha-cache"
    secrets = {"AWS_ACCESS_KEY_ID": s3.env["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": s3.secret}
    first = Job(sealed.root / "gha-1", s3.secret, {})
    assert not github_job(doc, first, repos.remote, cache, secrets)
    check_restored(first.work, shas)
    assert s3.secret not in "\n".join(first.log)

    unreachable(repos)
    second = Job(sealed.root / "gha-2", s3.secret, {})
    assert github_job(doc, second, repos.remote, cache, secrets), "same oids: the same cache key"
    check_restored(second.work, shas)


def test_gitlab_ci_recipe_runs_and_its_cache_serves_the_next_job(s3: S3Setup, sealed, published) -> None:
    repos, shas = published
    doc, cache = recipe("gitlab-ci"), sealed.root / "gitlab-cache"
    first = Job(sealed.root / "gl-1", s3.secret, {})
    assert not gitlab_job(doc, first, repos.remote, cache)
    check_restored(first.work, shas)
    assert "3 artifacts at this commit" in "\n".join(first.log)
    assert git("status", "--porcelain", cwd=first.work).stdout == ""

    unreachable(repos)
    second = Job(sealed.root / "gl-2", s3.secret, {})
    assert gitlab_job(doc, second, repos.remote, cache)
    check_restored(second.work, shas)
