"""`git mlx doctor`: every check passes on a good set-up, and each one fails, with its fix,
when its part of the set-up is broken. Exit 1 when anything is wrong."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.support.commands import Result, assert_no_traceback, git, mlx, run
from tests.support.repos import Repos, make_repo_with_bare_remote
from tests.support.s3 import AWS_LEAKS, S3Setup, free_port, make_s3_repo


def doctor(cwd: Path, env: dict[str, str] | None = None, ok: bool = True) -> Result:
    result = mlx("doctor", cwd=cwd, env=env, check=False)
    assert_no_traceback(result)
    assert result.returncode == (0 if ok else 1), str(result)
    return result


def finding(result: Result, check: str) -> str:
    """The line of one check, with its fix line if it has one."""
    lines = result.stdout.splitlines()
    for i, line in enumerate(lines):
        if line.split(":")[0].split()[-1:] == [check]:
            fix = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("      fix:") else ""
            return f"{line}\n{fix}"
    raise AssertionError(f"no '{check}' line:\n{result}")


def test_doctor_passes_every_check_on_a_set_up_s3_repository(s3: S3Setup, sealed) -> None:
    repos = make_s3_repo(sealed.root, s3.url(), s3.endpoint)
    result = doctor(repos.work)
    for check in ("program", "filters", "hooks", "store", "credentials", "remote"):
        assert finding(result, check).startswith("ok"), str(result)
    assert "found (env)" in finding(result, "credentials")
    assert s3.secret not in result.output and s3.env["AWS_ACCESS_KEY_ID"] not in result.output


def test_doctor_finds_filters_not_configured(repos: Repos) -> None:
    git("config", "--global", "--unset", "filter.mlx.process", cwd=repos.work)
    line = finding(doctor(repos.work, ok=False), "filters")
    assert line.startswith("FAIL") and "filter.mlx.process" in line and "git mlx install" in line


def test_doctor_finds_git_mlx_missing_from_path(repos: Repos) -> None:
    env = {"PATH": os.pathsep.join(p for p in ("/usr/bin", "/bin") if os.path.isdir(p))}
    result = run([sys.executable, "-m", "gitmlx", "doctor"], repos.work, env=env, check=False)
    assert result.returncode == 1, str(result)
    assert finding(result, "program").startswith("FAIL  program: git-mlx is not on PATH"), str(result)


def test_doctor_finds_a_missing_hook(repos: Repos) -> None:
    (repos.work / ".git" / "hooks" / "pre-push").unlink()
    line = finding(doctor(repos.work, ok=False), "hooks")
    assert line.startswith("FAIL") and "pre-push" in line and "run 'git mlx install'" in line


def test_doctor_finds_hooks_shadowed_by_core_hooks_path(repos: Repos) -> None:
    git("config", "core.hooksPath", ".githooks", cwd=repos.work)
    line = finding(doctor(repos.work, ok=False), "hooks")
    assert line.startswith("FAIL") and "core.hooksPath=.githooks shadows" in line, line
    mlx("install", cwd=repos.work)  # the fix it names
    assert finding(doctor(repos.work), "hooks").startswith("ok")


def test_doctor_finds_a_foreign_hook(repos: Repos) -> None:
    (repos.work / ".git" / "hooks" / "pre-push").write_text("#!/bin/sh\nexit 0\n")
    line = finding(doctor(repos.work, ok=False), "hooks")
    assert line.startswith("FAIL") and "not gitmlx's: pre-push" in line and "--force" in line


def test_doctor_finds_a_store_it_cannot_write(repos: Repos) -> None:
    blocker = repos.work.parent / "not-a-folder"
    blocker.write_text("a file where the store should be\n")
    line = finding(doctor(repos.work, env={"GIT_MLX_CACHE": str(blocker)}, ok=False), "store")
    assert line.startswith("FAIL") and "not a folder" in line, line


def test_doctor_finds_no_artifact_remote(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root)
    git("remote", "remove", "origin", cwd=repos.work)
    line = finding(doctor(repos.work, ok=False), "remote")
    assert line.startswith("FAIL") and "git mlx remote set" in line


def test_doctor_finds_a_directory_remote_that_does_not_exist(repos: Repos) -> None:
    line = finding(doctor(repos.work, env={"GIT_MLX_URL": "/nonexistent/deep/store"}, ok=False), "remote")
    assert line.startswith("FAIL") and "'/nonexistent/deep/store' does not exist" in line


def test_doctor_finds_an_unreachable_s3_endpoint(s3: S3Setup, sealed) -> None:
    repos = make_s3_repo(sealed.root, s3.url(), f"http://127.0.0.1:{free_port()}")
    line = finding(doctor(repos.work, ok=False), "remote")
    assert line.startswith("FAIL"), line


def test_doctor_finds_no_s3_credentials_and_names_none(s3: S3Setup, sealed, monkeypatch) -> None:
    repos = make_s3_repo(sealed.root, s3.url(), s3.endpoint)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", *AWS_LEAKS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(sealed.root / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(sealed.root / "none"))
    line = finding(doctor(repos.work, ok=False), "credentials")
    assert line.startswith("FAIL  credentials: no AWS credentials found") and "AWS_PROFILE" in line
