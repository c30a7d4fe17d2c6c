"""Artifacts survive add / commit / push / clone byte for byte, and never enter git."""

from __future__ import annotations

from pathlib import Path

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import git_blob_hash, write_random
from tests.support.repos import (
    HOOK_NAMES,
    Repos,
    assert_clean_worktree,
    assert_content,
    assert_no_big_blobs,
    assert_pointer,
    assert_remote_object,
    clone,
    commit_all,
    hooks_dir,
    remote_files,
    remote_oids,
    remote_store,
)
from tests.support.stores import assert_local_object, stored_oids

MIB = 1024 * 1024


def test_large_artifact_round_trips_and_its_bytes_never_enter_git(repos: Repos, sealed) -> None:
    sha = write_random(repos.work / "model.bin", 30 * MIB, "model")
    blob_id = git_blob_hash(repos.work / "model.bin")
    commit_all(repos.work, "add model")
    push = git("push", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    cloned = clone(repos.remote, dest)

    assert_no_traceback(push, cloned)
    assert_content(dest, "model.bin", sha)
    assert_clean_worktree(dest)
    oid, size = assert_pointer(dest, "model.bin", spec="HEAD")
    assert (oid, size) == (sha, 30 * MIB)
    assert_local_object(repos.work, oid, size)
    assert_remote_object(repos.remote, oid)
    assert_local_object(dest, oid, size)
    for repo in (repos.work, repos.remote, dest):
        assert_no_big_blobs(repo, limit=1024, forbidden=[blob_id])


def test_clone_gets_hooks_so_its_pushes_upload(repos: Repos, sealed) -> None:
    write_random(repos.work / "a.bin", 1000, "a")
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    clone(repos.remote, dest)
    for name in HOOK_NAMES:
        assert "gitmlx-hook" in (hooks_dir(dest) / name).read_text()

    sha = write_random(dest / "b.bin", 2000, "b")
    commit_all(dest)
    git("push", "-q", "origin", "main", cwd=dest)
    assert_remote_object(repos.remote, sha)


def test_unusual_names_and_tiny_files_round_trip(sealed) -> None:
    from tests.support.repos import make_repo_with_bare_remote

    repos = make_repo_with_bare_remote(sealed.root, patterns=["*.bin", "models/**", "my data/*"])
    attributes = (repos.work / ".gitattributes").read_text()
    assert "my[[:space:]]data/* filter=mlx diff=mlx merge=mlx -text" in attributes
    files = {
        "with space.bin": 5000,
        "-leading-dash.bin": 3000,
        "--double-dash.bin": 10,
        "ünïcödé ✓.bin": 4000,
        "模型/权重 1.bin": 2500,
        "sub dir/deeper/-x y.bin": 1500,
        "empty.bin": 0,
        "one-byte.bin": 1,
        "models/weights.safetensors": 6000,
        "models/sub folder/ä ö.pt": 700,
        "my data/train set.parquet": 800,
    }
    expected = {path: write_random(repos.work / path, size, path) for path, size in files.items()}
    (repos.work / "untracked.txt").write_text("plain text stays a plain blob\n")
    commit_all(repos.work, "odd names")
    pushed = git("push", "origin", "main", cwd=repos.work)

    assert_no_traceback(pushed)
    assert blob_text(repos.work, "untracked.txt") == "plain text stays a plain blob\n"
    for path, size in files.items():
        assert assert_pointer(repos.work, path, spec="HEAD") == (expected[path], size), path
        assert_remote_object(repos.remote, expected[path])

    dest = sealed.root / "clone"
    assert_no_traceback(clone(repos.remote, dest))
    for path, sha in expected.items():
        assert_content(dest, path, sha)
    assert_clean_worktree(dest)
    assert_clean_worktree(repos.work)


def blob_text(repo: Path, path: str) -> str:
    return git("cat-file", "blob", f"HEAD:{path}", cwd=repo).stdout


def test_push_uploads_exactly_the_changed_object_and_nothing_when_nothing_is_new(repos: Repos) -> None:
    shas = {name: write_random(repos.work / name, 200_000, name) for name in ("a.bin", "b.bin", "c.bin")}
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    first = remote_oids(repos.remote)
    assert first == set(shas.values())

    new_sha = write_random(repos.work / "b.bin", 200_000, "b, second version")
    commit_all(repos.work, "change b")
    git("push", "-q", "origin", "main", cwd=repos.work)
    second = remote_oids(repos.remote)
    assert second - first == {new_sha}
    assert first <= second

    before = remote_files(repos.remote)
    (repos.work / "notes.txt").write_text("no artifact changed\n")
    commit_all(repos.work, "notes")
    no_artifact = git("push", "origin", "main", cwd=repos.work)  # pre-push runs, finds nothing
    up_to_date = git("push", "origin", "main", cwd=repos.work)
    explicit = mlx("push", "--all", cwd=repos.work)
    assert "uploaded" not in no_artifact.stderr + up_to_date.stderr + explicit.stderr
    assert remote_oids(repos.remote) == second
    assert remote_files(repos.remote) == before, "a push with nothing new changed the remote"
    assert not list(remote_store(repos.remote).glob("tmp/*")), "a push left temporary files on the remote"


def test_skip_smudge_clone_keeps_pointers_and_pull_restores_them(repos: Repos, sealed) -> None:
    shas = {f"d/{i}.bin": write_random(repos.work / f"d/{i}.bin", 10_000 + i, i) for i in range(5)}
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})

    for path, sha in shas.items():
        assert assert_pointer(dest, path) == (sha, _size(repos, path))
    assert_clean_worktree(dest)
    assert not stored_oids(dest / ".git" / "mlx")

    pulled = mlx("pull", cwd=dest)
    assert_no_traceback(pulled)
    for path, sha in shas.items():
        assert_content(dest, path, sha)
        assert_local_object(dest, sha)
    assert_clean_worktree(dest)


def _size(repos: Repos, path: str) -> int:
    return (repos.work / path).stat().st_size
