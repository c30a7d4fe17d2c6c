"""Acceptance 1: a CI job clones a repository whose artifacts live on S3.

The remote (`s3://BUCKET/team/models`) and its endpoint are in the committed `.mlxconfig`;
the CI machine has a fresh HOME with nothing but the global filter config written by
`git mlx install`, and AWS variables. A plain `git clone` must restore every artifact.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import KIB, MIB, sha256_file, write_random
from tests.support.integrity import assert_no_crash_logs
from tests.support.repos import (
    add_commit,
    assert_clean_worktree,
    assert_content,
    assert_no_big_blobs,
    assert_pointer,
    clone,
    remote_ref,
)
from tests.support.s3 import (
    S3Setup,
    assert_all_under_prefix,
    aws_variables,
    bucket_objects,
    make_s3_repo,
    open_multipart_uploads,
)
from tests.support.sealed import sealed_env

ARTIFACTS = {
    "model.bin": 12 * MIB,
    "weights/layer 1.bin": 300 * KIB,
    "weights/layer 2.bin": 300 * KIB + 1,
    "data/ünïcödé.bin": 64 * KIB,
    "data/empty.bin": 0,
    "tiny.bin": 1,
}


def ci_environment(root: Path, secret: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Become a fresh CI machine: the process environment is replaced by a new HOME whose
    only git config is what `git mlx install` wrote, the sealed git variables, and AWS_*."""
    home, tmp = root / "ci-home", root / "ci-tmp"
    home.mkdir()
    tmp.mkdir()
    env = sealed_env(home, tmp, root)
    env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    env.update(aws_variables(secret))
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    installed = git("mlx", "install", cwd=home)
    assert_no_traceback(installed)
    config = (home / ".gitconfig").read_text()
    sections = {line.strip() for line in config.splitlines() if line.strip().startswith("[")}
    assert '[filter "mlx"]' in sections, f"'git mlx install' wrote no filter config:\n{config}"
    assert all(name.endswith(' "mlx"]') for name in sections), f"the CI HOME has more than gitmlx's config:\n{config}"
    assert not (home / ".aws").exists()
    return env


def test_ci_clone_with_only_global_filter_config_and_aws_variables_restores_everything(
    s3: S3Setup, sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = s3.url("team/models")
    repos = make_s3_repo(sealed.root, url, s3.endpoint)
    shas = add_commit(repos.work, ARTIFACTS, message="first")
    # A second commit that changes one file and adds one: history holds both versions.
    shas |= add_commit(repos.work, {"model.bin": 2 * MIB, "later.bin": 100 * KIB}, seed="v2", message="second")
    pushed = git("push", "origin", "main", cwd=repos.work)
    assert remote_ref(repos.remote) == git("rev-parse", "HEAD", cwd=repos.work).stdout.strip()
    # The artifacts went to S3, not to the embedded default beside the bare git remote.
    assert not (repos.remote / "mlx").exists(), "artifacts were written beside the git remote"
    objects = bucket_objects(s3.admin, s3.bucket)
    assert_all_under_prefix(objects, "team/models")
    assert not open_multipart_uploads(s3.admin, s3.bucket)

    env = ci_environment(sealed.root, s3.secret, monkeypatch)
    dest = sealed.root / "ci-checkout"
    cloned = clone(repos.remote, dest)
    assert_no_traceback(pushed, cloned)
    for path, sha in shas.items():
        assert_content(dest, path, sha)
    status = git("status", "--porcelain", "--untracked-files=all", cwd=dest)
    assert status.stdout == "", f"git status is not clean after the CI clone:\n{status.stdout}"
    assert_clean_worktree(dest)
    for path in shas:
        assert_pointer(dest, path, spec="HEAD")  # git holds pointers only
    assert_no_big_blobs(dest)
    # The first commit's version of model.bin is on S3 too: check it out in the CI clone.
    old = git("checkout", "-q", "HEAD~1", "--", "model.bin", cwd=dest)
    assert_no_traceback(old)
    first_model = sealed.root / "first-model.bin"
    assert sha256_file(dest / "model.bin") == write_random(first_model, ARTIFACTS["model.bin"], "model.bin")

    # Nothing was written outside the prefix, by the push or by the clone.
    objects = bucket_objects(s3.admin, s3.bucket)
    assert_all_under_prefix(objects, "team/models")
    stored = sum(o.size for o in objects)
    logical = sum(ARTIFACTS.values()) + 2 * MIB + 100 * KIB
    assert stored >= logical - 1, f"{stored} bytes on S3 for {logical} bytes of random artifacts"
    assert_no_crash_logs(Path(env["TMPDIR"]))


def test_mlx_commands_in_the_ci_clone_use_the_committed_remote(
    s3: S3Setup, sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`git mlx remote` shows the S3 settings and that they come from `.mlxconfig`; a CI job
    that cloned with GIT_MLX_SKIP_SMUDGE=1 restores everything later with `git mlx pull`."""
    url = s3.url("team/models")
    repos = make_s3_repo(sealed.root, url, s3.endpoint)
    shas = add_commit(repos.work, {"a.bin": 2 * MIB, "b.bin": 50 * KIB})
    git("push", "-q", "origin", "main", cwd=repos.work)

    env = ci_environment(sealed.root, s3.secret, monkeypatch)
    dest = sealed.root / "ci-checkout"
    clone(repos.remote, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    for path in shas:
        assert_pointer(dest, path)
    shown = mlx("remote", cwd=dest)
    assert url in shown.output and s3.endpoint in shown.output and ".mlxconfig" in shown.output
    pulled = mlx("pull", cwd=dest)
    assert_no_traceback(shown, pulled)
    for path, sha in shas.items():
        assert_content(dest, path, sha)
    assert_clean_worktree(dest)
    assert_no_crash_logs(Path(env["TMPDIR"]))
