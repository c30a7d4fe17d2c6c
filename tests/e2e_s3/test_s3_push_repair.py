"""`git mlx push` repairs a push that skipped the hook (`git push --no-verify`, or a
machine where the hooks were not installed): the ref is on the git remote, the artifacts
are not on S3, and a CI clone cannot restore them until `git mlx push` uploads them."""

from __future__ import annotations

from tests.support.commands import git, mlx
from tests.support.content import KIB
from tests.support.repos import add_commit, assert_content, clone, remote_ref
from tests.support.s3 import S3Setup, bucket_objects, make_s3_repo

KNOWN_BUG = (
    "'git mlx push [REMOTE] [REF]' excludes commits the git remote already has "
    "(--remotes=<name>), so after 'git push --no-verify' it uploads nothing and exits 0; "
    "only --all repairs the remote"
)


def test_git_mlx_push_uploads_what_the_s3_remote_lacks_after_a_no_verify_push(s3: S3Setup, sealed) -> None:
    """(`git mlx push`, `git mlx push origin` and `git mlx push origin main` all do this.)"""
    repos = make_s3_repo(sealed.root, s3.url("team/models"), s3.endpoint)
    shas = add_commit(repos.work, {"a.bin": 20 * KIB, "b.bin": 3 * KIB})
    git("push", "-q", "--no-verify", "origin", "main", cwd=repos.work)
    assert remote_ref(repos.remote) is not None
    assert not bucket_objects(s3.admin, s3.bucket)

    mlx("push", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    cloned = clone(repos.remote, dest, check=False)
    assert cloned.returncode == 0, f"the clone could not restore the artifacts:\n{cloned}"
    for path, sha in shas.items():
        assert_content(dest, path, sha)


def test_git_mlx_push_all_uploads_what_the_s3_remote_lacks_after_a_no_verify_push(s3: S3Setup, sealed) -> None:
    repos = make_s3_repo(sealed.root, s3.url("team/models"), s3.endpoint)
    shas = add_commit(repos.work, {"a.bin": 20 * KIB})
    git("push", "-q", "--no-verify", "origin", "main", cwd=repos.work)
    mlx("push", "--all", cwd=repos.work)
    dest = sealed.root / "clone"
    clone(repos.remote, dest)
    for path, sha in shas.items():
        assert_content(dest, path, sha)
