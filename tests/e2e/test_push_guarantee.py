"""A push never leaves the artifact remote unable to serve what it pushed (issue 16):
after a Git LFS migration whose commit changes only .gitattributes, after `remote set`
to a new, empty artifact remote, and for `git mlx push --all`. Also what `git mlx status`
calls unpushed (issue 21, item 16) and the remote record that keeps pushes cheap."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support import remote_layout
from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import MIB, sha256_file, write_random
from tests.support.lfs import lfs_home, path_without_git_lfs
from tests.support.repos import (
    Repos,
    add_commit,
    assert_clean_worktree,
    assert_content,
    blob_at,
    clone,
    commit_all,
    local_store,
    remote_oids,
    remote_ref,
)
from tests.support.stores import remove_local_object

#: The `.gitattributes` a new Hugging Face model repository starts with (28 patterns),
#: plus tokenizer.json, which model repositories commonly add.
HF_PATTERNS = [
    "*.7z",
    "*.arrow",
    "*.bin",
    "*.bz2",
    "*.ckpt",
    "*.ftz",
    "*.gz",
    "*.h5",
    "*.joblib",
    "*.lfs.*",
    "*.mlmodel",
    "*.model",
    "*.msgpack",
    "*.npy",
    "*.npz",
    "*.onnx",
    "*.ot",
    "*.parquet",
    "*.pb",
    "*.pickle",
    "*.pkl",
    "*.pt",
    "*.pth",
    "*.rar",
    "*.safetensors",
    "saved_model/**/*",
    "*.tar.*",
    "*tfevents*",
    "tokenizer.json",
]
LFS_POINTER_START = b"version https://git-lfs.github.com/spec/v1\n"


def write_safetensors(path: Path, size: int, seed: str) -> str:
    """A safetensors file of `size` bytes: a real header, then random tensor bytes."""
    header = json.dumps({"weight": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}).encode()
    header += b" " * (-len(header) % 8)
    body = path.with_suffix(".body")
    write_random(body, size - 8 - len(header), seed)
    with open(path, "wb") as out, open(body, "rb") as f:
        out.write(len(header).to_bytes(8, "little") + header)
        shutil.copyfileobj(f, out, 1 << 20)
    body.unlink()
    return sha256_file(path)


def hf_files(repo: Path, model_size: int, version: str) -> dict[str, str]:
    """The files of a small model repository, version `version`; path -> sha256."""
    shas = {"model.safetensors": write_safetensors(repo / "model.safetensors", model_size, f"model {version}")}
    shas["tokenizer.json"] = write_random(repo / "tokenizer.json", 600 * 1024, f"tokenizer {version}")
    (repo / "config.json").write_text(json.dumps({"model_type": "demo", "version": version}) + "\n")
    shas["config.json"] = sha256_file(repo / "config.json")
    return shas


def checkout_matches(repo: Path, rev: str, expected: dict[str, str]) -> None:
    git("checkout", "-q", rev, cwd=repo)
    for path, sha in expected.items():
        assert_content(repo, path, sha)
    assert_clean_worktree(repo)


SIZES = [pytest.param(3 * MIB, id="3MiB"), pytest.param(64 * MIB, id="64MiB", marks=pytest.mark.slow)]


@pytest.mark.parametrize("model_size", SIZES)
def test_a_hugging_face_repo_moved_from_git_lfs_is_served_to_a_clone_without_git_lfs(sealed, model_size) -> None:
    # A Git LFS user makes the repository and pushes it (git-lfs's own transfer to a local bare remote).
    only_lfs = lfs_home(sealed.root / "lfs-home")
    origin = sealed.root / "hub.git"
    git("init", "-q", "--bare", origin, cwd=sealed.root, env=only_lfs)
    author = sealed.root / "author"
    git("init", "-q", author, cwd=sealed.root, env=only_lfs)
    git("lfs", "track", *HF_PATTERNS, cwd=author, env=only_lfs)
    assert (author / ".gitattributes").read_text().count("filter=lfs") == len(HF_PATTERNS)
    history = []
    for version in ("v1", "v2"):
        shas = hf_files(author, model_size, version)
        git("add", "-A", cwd=author, env=only_lfs)
        git("commit", "-q", "-m", version, cwd=author, env=only_lfs)
        history.append((git("rev-parse", "HEAD", cwd=author).stdout.strip(), shas))
    git("remote", "add", "origin", origin, cwd=author, env=only_lfs)
    git("push", "-q", "origin", "main", cwd=author, env=only_lfs)
    assert blob_at(author, "HEAD:model.safetensors").startswith(LFS_POINTER_START)

    # On a machine with both tools: clone, fetch every LFS object, migrate, commit, push.
    both = lfs_home(sealed.root / "both-home", sealed.home / ".gitconfig")
    mover = sealed.root / "mover"
    clone(origin, mover, env=both)
    git("lfs", "fetch", "--all", cwd=mover, env=both)
    migrated = mlx("migrate", "from-lfs", cwd=mover, env=both)
    assert "the next 'git push' uploads up to 2 object(s)" in migrated.stdout, migrated.stdout
    assert "not in this clone" not in migrated.stderr
    commit_all(mover, "Move large files from Git LFS to gitmlx")
    pushed = git("push", "origin", "main", cwd=mover, env=both)
    assert_no_traceback(migrated, pushed)
    head_objects = {history[1][1][p] for p in ("model.safetensors", "tokenizer.json")}
    assert head_objects <= remote_oids(origin), f"the push left HEAD's objects off the remote:\n{pushed}"

    # A machine with gitmlx only: no git-lfs on PATH, no filter.lfs in any config.
    assert "lfs" not in (sealed.home / ".gitconfig").read_text()
    no_lfs = {"PATH": path_without_git_lfs(sealed.root / "bin-without-lfs")}
    dest = sealed.root / "consumer"
    clone(origin, dest, env=no_lfs)
    for path, sha in history[1][1].items():
        assert_content(dest, path, sha)
    assert_clean_worktree(dest)
    assert not (dest / ".git" / "lfs").exists()
    mlx("migrate", "from-lfs", cwd=dest, env=no_lfs)  # once per clone: older commits say filter=lfs
    checkout_matches(dest, history[1][0], history[1][1])  # the commit before the migration


def test_a_new_empty_artifact_remote_gets_everything_head_needs_from_one_push(repos: Repos, sealed) -> None:
    shas = add_commit(repos.work, {"a.bin": 200_000, "models/b.bin": 50_000}, "old")
    git("push", "-q", "origin", "main", cwd=repos.work)
    fresh = sealed.root / "new-artifacts"
    mlx("remote", "set", str(fresh), cwd=repos.work)
    commit_all(repos.work, "move the artifacts")

    pushed = git("push", "origin", "main", cwd=repos.work)

    assert_no_traceback(pushed)
    dest = sealed.root / "clone"
    clone(repos.remote, dest)
    for path, sha in shas.items():
        assert_content(dest, path, sha)
    assert_clean_worktree(dest)
    assert remote_layout.manifest_oids(fresh) == set(shas.values())


def test_a_push_names_what_a_tip_needs_and_nobody_has_and_refuses(repos: Repos, sealed) -> None:
    shas = add_commit(repos.work, {"a.bin": 20_000, "lost.bin": 20_000}, "both")
    git("push", "-q", "origin", "main", cwd=repos.work)
    mlx("remote", "set", str(sealed.root / "new-artifacts"), cwd=repos.work)
    commit_all(repos.work, "move the artifacts")
    remove_local_object(repos.work, shas["lost.bin"])
    before = remote_ref(repos.remote)

    refused = git("push", "origin", "main", cwd=repos.work, check=False)

    assert_no_traceback(refused)
    assert refused.returncode != 0
    assert f"cannot push 'lost.bin' ({shas['lost.bin'][:10]}" in refused.stderr, refused.stderr
    assert "needed by the pushed tips" in refused.stderr
    assert "a.bin" not in refused.stderr.replace("lost.bin", "")
    assert remote_ref(repos.remote) == before, "git pushed the ref although a tip's object is on no remote"


def test_push_all_uploads_what_every_ref_needs(repos: Repos, sealed) -> None:
    old = add_commit(repos.work, {"a.bin": 30_000}, "old")["a.bin"]
    new = add_commit(repos.work, {"a.bin": 30_000}, "new")["a.bin"]
    git("checkout", "-q", "-b", "weights", cwd=repos.work)
    mlx("track", "*.pt", cwd=repos.work)
    pt = write_random(repos.work / "w.pt", 40_000, "pt")
    commit_all(repos.work, "weights as .pt")
    git("checkout", "-q", "main", cwd=repos.work)
    git("tag", "v1", "HEAD~1", cwd=repos.work)
    git("push", "-q", "--no-verify", "origin", "main", "weights", "v1", cwd=repos.work)
    assert remote_oids(repos.remote) == set()

    pushed = mlx("push", "--all", cwd=repos.work)

    assert_no_traceback(pushed)
    assert remote_oids(repos.remote) == {old, new, pt}
    dest = sealed.root / "clone"
    clone(repos.remote, dest)
    checkout_matches(dest, "origin/weights", {"w.pt": pt, "a.bin": new})
    checkout_matches(dest, "v1", {"a.bin": old})


def test_push_all_refuses_when_another_ref_needs_an_object_nobody_has(repos: Repos) -> None:
    add_commit(repos.work, {"a.bin": 30_000}, "main")
    git("checkout", "-q", "-b", "side", cwd=repos.work)
    lost = add_commit(repos.work, {"side.bin": 30_000}, "side")["side.bin"]
    git("checkout", "-q", "main", cwd=repos.work)
    remove_local_object(repos.work, lost)

    result = mlx("push", "--all", cwd=repos.work, check=False)

    assert_no_traceback(result)
    assert result.returncode == 1, str(result)
    assert f"cannot push 'side.bin' ({lost[:10]}" in result.stderr


def status_unpushed(repo: Path) -> list[str]:
    lines = mlx("status", cwd=repo).stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Artifacts committed but not pushed"))
    rows = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        if line.strip() != "(none)":
            rows.append(line.strip().split(" ")[0])
    return rows


def test_status_lists_what_a_no_verify_push_left_off_the_artifact_remote(repos: Repos) -> None:
    add_commit(repos.work, {"a.bin": 5000, "b.bin": 5000}, "ab")
    git("push", "-q", "--no-verify", "origin", "main", cwd=repos.work)

    skipped = status_unpushed(repos.work)
    mlx("push", cwd=repos.work)
    repaired = status_unpushed(repos.work)

    assert skipped == ["a.bin", "b.bin"]
    assert repaired == []


def test_status_lists_what_a_push_under_a_foreign_hooks_path_left_off(repos: Repos, sealed) -> None:
    add_commit(repos.work, {"a.bin": 5000}, "a")
    foreign = sealed.root / "foreign-hooks"
    foreign.mkdir()
    git("config", "core.hooksPath", foreign, cwd=repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)

    assert status_unpushed(repos.work) == ["a.bin"]


def test_status_in_a_bare_clone_lists_nothing_that_was_pushed(repos: Repos, sealed) -> None:
    add_commit(repos.work, {"a.bin": 5000}, "a")
    git("push", "-q", "origin", "main", cwd=repos.work)
    bare = sealed.root / "mirror.git"
    git("clone", "-q", "--bare", repos.remote, bare, cwd=sealed.root)

    out = mlx("status", cwd=bare).stdout

    assert status_unpushed(bare) == []
    assert "a.bin" not in out, out


def test_the_hook_asks_the_remote_only_about_objects_the_record_does_not_vouch_for(repos: Repos) -> None:
    add_commit(repos.work, {f"f{i:02}.bin": 3000 for i in range(20)}, "twenty")
    git("push", "-q", "origin", "main", cwd=repos.work)
    add_commit(repos.work, {"f00.bin": 3000}, "one changed")

    warm = git("push", "origin", "main", cwd=repos.work)
    (local_store(repos.work) / "remote-objects.sqlite").unlink()
    add_commit(repos.work, {"f01.bin": 3000}, "another changed")
    cold = git("push", "origin", "main", cwd=repos.work)

    assert "uploaded 1 objects" in warm.stderr and "1 asked of the remote" in warm.stderr, warm.stderr
    assert "20 asked of the remote" in cold.stderr, cold.stderr


def test_a_push_of_lfs_history_reads_git_lfs_objects_and_names_those_nobody_has(sealed) -> None:
    only_lfs = lfs_home(sealed.root / "lfs-home")
    hub = sealed.root / "hub.git"
    git("init", "-q", "--bare", hub, cwd=sealed.root, env=only_lfs)
    author = sealed.root / "author"
    git("init", "-q", author, cwd=sealed.root, env=only_lfs)
    git("lfs", "track", "*.bin", cwd=author, env=only_lfs)
    old = write_random(author / "a.bin", 40_000, "v1")
    git("add", "-A", cwd=author, env=only_lfs)
    git("commit", "-q", "-m", "v1", cwd=author, env=only_lfs)
    new = write_random(author / "a.bin", 40_000, "v2")
    git("commit", "-q", "-am", "v2", cwd=author, env=only_lfs)
    git("remote", "add", "origin", hub, cwd=author, env=only_lfs)
    git("push", "-q", "origin", "main", cwd=author, env=only_lfs)
    both = lfs_home(sealed.root / "both-home", sealed.home / ".gitconfig")
    mover = sealed.root / "mover"
    clone(hub, mover, env={**both, "GIT_LFS_SKIP_SMUDGE": "1"})
    migrated = mlx("migrate", "from-lfs", cwd=mover, env=both)  # nothing to import yet
    assert "the next 'git push' uploads up to 1 object(s) (39.1 KiB)" in migrated.stdout, migrated.stdout
    assert "1 of them (39.1 KiB) are not in this clone" in migrated.stderr, migrated.stderr
    assert "hint: run 'git lfs fetch --all' before 'git push'" in migrated.stderr
    commit_all(mover, "Move large files from Git LFS to gitmlx")
    git("lfs", "fetch", "origin", "main", cwd=mover, env=both)  # HEAD's objects only, after the migration
    new_home = sealed.root / "new-home.git"
    git("init", "-q", "--bare", new_home, cwd=sealed.root)
    git("remote", "add", "new-home", new_home, cwd=mover)

    pushed = git("push", "new-home", "main", cwd=mover, env=both)  # all history is in the pushed range

    assert_no_traceback(pushed)
    assert remote_oids(new_home) == {new}
    assert "1 object(s) that older pushed commits name by Git LFS pointers are neither in this clone" in pushed.stderr
    assert f"'a.bin' ({old[:10]}" in pushed.stderr
    assert "git lfs fetch --all" in pushed.stderr
    assert remote_ref(new_home) is not None
