"""Guarantee 8 and "a blob that does not parse exactly as a pointer is ordinary content":
repositories built to mislead gitmlx. Pointers whose oid has path parts, is not hex or has
the wrong length; sizes up to 2^64 and beyond; a pointer that lies about its object's
size; tracked symlinks; a store folder that is a symlink; pointer text in paths that are
not tracked. tests/e2e/test_failures.py covers '..' and absolute-path oids, uppercase
hex, CRLF and extra keys; these are the rest.

Each test checks from the outside: nothing written outside the clone (or the store the
user chose), no traceback and no crash log, every message naming the file.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import write_random
from tests.support.formats import MLX_VERSION, pointer_text
from tests.support.integrity import assert_no_crash_logs, check_remote_dir, check_store
from tests.support.repos import (
    Repos,
    assert_clean_worktree,
    assert_content,
    clone,
    commit_all,
    local_store,
    make_repo_with_bare_remote,
    snapshot,
)
from tests.support.stores import object_path, stored_oids

LFS_VERSION = "https://git-lfs.github.com/spec/v1"
MAX_SIZE = 2**63 - 1


def commit_raw(repo: Path, blobs: dict[str, bytes], mode: str = "100644", message: str = "raw") -> None:
    """Commit exact bytes under paths, bypassing every filter (as a hostile author can)."""
    for path, data in blobs.items():
        sha = git("hash-object", "-w", "--no-filters", "--stdin", cwd=repo, input=data).stdout.strip()
        git("update-index", "--add", "--cacheinfo", f"{mode},{sha},{path}", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)


def written_outside(before: set[Path], root: Path, *allowed: Path) -> list[Path]:
    return sorted(p for p in snapshot(root) - before if not any(p.is_relative_to(a) for a in allowed))


# --- oids and sizes ---------------------------------------------------------------------------


def hostile_pointer_blobs(real: str) -> tuple[dict[str, bytes], set[str]]:
    """(path -> blob, the paths whose blob *is* a valid pointer, of an object nobody has)."""
    ghost = hashlib.sha256(b"nobody has this").hexdigest()
    blobs = {
        "short.bin": pointer_text(real[:63], 10),
        "long.bin": pointer_text(real + "a", 10),
        "slash.bin": pointer_text(real[:30] + "/" + real[31:], 10),
        "shards.bin": pointer_text(f"{real[:2]}/{real[2:4]}/{real[5:]}", 10),
        "nul.bin": pointer_text(real[:63] + "\0", 10),
        "no-algo.bin": f"version {MLX_VERSION}\noid {real}\nsize 10\n".encode(),
        "md5.bin": f"version {MLX_VERSION}\noid md5:{real[:32]}\nsize 10\n".encode(),
        "size-2^63.bin": pointer_text(real, 2**63),
        "size-2^64-1.bin": pointer_text(real, 2**64 - 1),
        "size-10^30.bin": pointer_text(real, 10**30),
        "size-negative.bin": pointer_text(real, 0).replace(b"size 0", b"size -1"),
        "max-size.bin": pointer_text(ghost, MAX_SIZE),
        "lfs-max-size.bin": pointer_text(ghost, MAX_SIZE, LFS_VERSION),
    }
    return blobs, {"max-size.bin", "lfs-max-size.bin"}


def test_hostile_oids_and_sizes_are_content_or_unrestorable_pointers_never_paths(repos: Repos, sealed) -> None:
    real = write_random(repos.work / "real.bin", 100_000, "real")
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    blobs, valid = hostile_pointer_blobs(real)
    commit_raw(repos.work, blobs, message="hostile pointers")
    # A hostile author skips the hook: the valid-looking pointers name objects nobody has.
    git("push", "-q", "--no-verify", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    before = snapshot(sealed.root)

    results = [clone(repos.remote, dest, check=False)]
    for args in (["pull"], ["fetch"], ["fetch", "--all"], ["checkout"], ["ls-files", "-s"], ["ls-files", "--all"]):
        results.append(mlx(*args, cwd=dest, check=False))
    results += [mlx("status", cwd=dest, check=False), mlx("du", cwd=dest, check=False)]

    assert_no_traceback(*results)
    assert_no_crash_logs(sealed.tmp)
    assert not written_outside(before, sealed.root, dest)
    for path, data in blobs.items():
        assert (dest / path).read_bytes() == data, f"{path!r} was not left exactly as committed"
    assert_content(dest, "real.bin", real)
    # Re-cleaning the non-pointer blobs (git status does) stores them as ordinary content.
    store = check_store(local_store(dest))
    assert real in store.objects and not store.corrupt
    cloned, pulled = results[0], results[1]
    assert cloned.returncode != 0 and pulled.returncode != 0, "unrestorable files must fail the command"
    for path in valid:  # each named, with the way out
        assert f"'{path}'" in cloned.stderr and f"'{path}'" in pulled.stderr
    assert "git mlx pull" in cloned.stderr
    errors = [line for line in (cloned.stderr + pulled.stderr).splitlines() if line.startswith("error:")]
    for path in set(blobs) - valid:  # ordinary content: never an error
        assert not any(f"'{path}'" in line for line in errors), f"{path!r} reported as an error"


# --- a pointer that lies about its object's size ------------------------------------------------


def liar_repo(sealed) -> tuple[Repos, str]:
    """real.bin committed, its object only in the local store (the work-tree copy deleted, so
    no later clean can put it back), and liar.bin: real.bin's oid with size 0, committed as
    a raw blob and never checked out."""
    repos = make_repo_with_bare_remote(sealed.root)
    real = write_random(repos.work / "real.bin", 300_000, "real")
    commit_all(repos.work, "real")
    (repos.work / "real.bin").unlink()
    commit_raw(repos.work, {"liar.bin": pointer_text(real, 0)}, message="liar")
    return repos, real


def test_a_pointer_lying_about_its_size_cannot_get_a_good_object_quarantined(sealed) -> None:
    repos, real = liar_repo(sealed)

    restored = git("checkout", "--", "liar.bin", cwd=repos.work, check=False)

    assert_no_traceback(restored)
    assert "'liar.bin'" in restored.stderr
    assert (repos.work / "liar.bin").read_bytes() == pointer_text(real, 0)
    assert real in check_store(local_store(repos.work)).objects, "the real object left the store"


def test_a_pointer_lying_about_its_size_never_gets_a_manifest_written(sealed) -> None:
    repos, real = liar_repo(sealed)

    pushed = git("push", "origin", "main", cwd=repos.work, check=False)

    assert_no_traceback(pushed)
    report = check_remote_dir(repos.remote / "mlx")
    assert report.ok, report.problems
    assert report.objects.get(real) in (None, 300_000), f"manifest of {real[:10]} says {report.objects.get(real)} bytes"


def test_a_clone_restores_the_real_file_beside_a_pointer_lying_about_its_size(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root)
    real = write_random(repos.work / "real.bin", 300_000, "real")
    commit_all(repos.work, "real")
    git("push", "-q", "origin", "main", cwd=repos.work)
    commit_raw(repos.work, {"liar.bin": pointer_text(real, 0)}, message="liar")
    git("push", "-q", "--no-verify", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"

    cloned = clone(repos.remote, dest, check=False)

    assert_no_traceback(cloned)
    assert "'liar.bin'" in cloned.stderr
    assert (dest / "liar.bin").read_bytes() == pointer_text(real, 0)
    assert_content(dest, "real.bin", real)


# --- tracked symlinks ------------------------------------------------------------------------


def test_a_tracked_symlink_is_stored_as_a_symlink_and_never_followed(repos: Repos, sealed) -> None:
    outside = sealed.root / "outside"
    secret = write_random(outside / "secret.bin", 50_000, "secret")
    secret_bytes = (outside / "secret.bin").read_bytes()
    os.symlink(outside / "secret.bin", repos.work / "absolute.bin")
    os.symlink("../outside/secret.bin", repos.work / "relative.bin")
    real = write_random(repos.work / "real.bin", 20_000, "real")

    added = git("add", "-A", cwd=repos.work)
    git("commit", "-q", "-m", "links", cwd=repos.work)
    pushed = git("push", "origin", "main", cwd=repos.work)
    staged = {
        line.split("\t")[1]: line.split()[0] for line in git("ls-files", "-s", cwd=repos.work).stdout.splitlines()
    }
    dest = sealed.root / "clone"
    before = snapshot(sealed.root)
    results = [clone(repos.remote, dest)]
    results += [mlx(*args, cwd=dest) for args in (["pull"], ["checkout"], ["fetch", "--all"], ["status"])]

    assert_no_traceback(added, pushed, *results)
    assert staged["absolute.bin"] == staged["relative.bin"] == "120000"
    assert git("cat-file", "blob", "HEAD:relative.bin", cwd=repos.work).stdout == "../outside/secret.bin"
    assert secret not in stored_oids(local_store(repos.work)), "the symlink's target was cleaned into the store"
    assert secret not in stored_oids(local_store(dest))
    assert (outside / "secret.bin").read_bytes() == secret_bytes
    assert os.readlink(dest / "absolute.bin") == str(outside / "secret.bin")
    assert os.readlink(dest / "relative.bin") == "../outside/secret.bin"
    assert "absolute.bin" not in results[-1].stdout + mlx("ls-files", "--all", cwd=dest).stdout
    assert not written_outside(before, sealed.root, dest)
    assert_content(dest, "real.bin", real)
    assert_clean_worktree(dest)


def test_a_symlink_whose_target_reads_as_a_pointer_is_not_an_artifact(repos: Repos, sealed) -> None:
    ghost = hashlib.sha256(b"ghost").hexdigest()
    os.symlink(pointer_text(ghost, 5).decode(), repos.work / "odd.bin")
    commit_all(repos.work, "odd link")

    pushed = git("push", "origin", "main", cwd=repos.work, check=False)
    listed = mlx("ls-files", "--all", cwd=repos.work)

    assert_no_traceback(pushed, listed)
    assert pushed.returncode == 0, str(pushed)
    assert "odd.bin" not in listed.stdout


def test_checkout_never_writes_through_a_symlinked_folder(repos: Repos, sealed) -> None:
    oid = write_random(repos.work / "d" / "model.bin", 30_000, "model")
    commit_all(repos.work)
    outside = sealed.root / "outside"
    outside.mkdir()
    (outside / "model.bin").write_bytes(pointer_text(oid, 30_000))
    for p in (repos.work / "d").iterdir():
        p.unlink()
    (repos.work / "d").rmdir()
    os.symlink(outside, repos.work / "d")

    results = [mlx("checkout", cwd=repos.work, check=False), mlx("pull", cwd=repos.work, check=False)]

    assert_no_traceback(*results)
    assert_no_crash_logs(sealed.tmp)
    assert (outside / "model.bin").read_bytes() == pointer_text(oid, 30_000), "content written through a symlink"
    assert sorted(p.name for p in outside.iterdir()) == ["model.bin"]


# --- the store folder is a symlink ----------------------------------------------------------------


def test_a_store_folder_symlinked_by_the_user_is_used_and_nothing_else_is_written(repos: Repos, sealed) -> None:
    """Decision: a symlink inside .git is the user's own set-up (a clone cannot create one),
    like moving .git/lfs to a bigger disk; gitmlx follows it. Objects land there, verified,
    and nothing else outside the repository is written."""
    elsewhere = sealed.root / "elsewhere"
    elsewhere.mkdir()
    (repos.work / ".git" / "mlx").mkdir()
    os.symlink(elsewhere, repos.work / ".git" / "mlx" / "objects")
    before = snapshot(sealed.root)
    oid = write_random(repos.work / "a.bin", 200_000, "a")

    added = git("add", "a.bin", cwd=repos.work)
    git("commit", "-q", "-m", "a", cwd=repos.work)
    (repos.work / "a.bin").unlink()
    restored = git("checkout", "--", "a.bin", cwd=repos.work)

    assert_no_traceback(added, restored)
    assert (object_path(local_store(repos.work), oid)).resolve().is_relative_to(elsewhere)
    assert check_store(repos.work / ".git" / "mlx").objects == {oid}
    assert not written_outside(before, sealed.root, repos.work, elsewhere)
    assert_content(repos.work, "a.bin", oid)


@pytest.fixture
def other_fs(sealed) -> Path:
    """A small tmpfs, another file system than the repository's (skip when we cannot mount)."""
    mount = sealed.root / "other-fs"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_whole_store_symlinked_to_another_file_system_works(repos: Repos, sealed, other_fs: Path) -> None:
    os.symlink(other_fs, repos.work / ".git" / "mlx")
    oid = write_random(repos.work / "a.bin", 200_000, "a")

    added = git("add", "a.bin", cwd=repos.work)

    assert_no_traceback(added)
    assert check_store(other_fs).objects == {oid}


def test_store_objects_on_another_file_system_work(repos: Repos, sealed, other_fs: Path) -> None:
    """Objects are written to a temporary file on the file system of `objects/`, so the
    rename into place never crosses file systems (EXDEV), and a checkout restores them."""
    (repos.work / ".git" / "mlx").mkdir()
    os.symlink(other_fs, repos.work / ".git" / "mlx" / "objects")
    oid = write_random(repos.work / "a.bin", 200_000, "a")

    added = git("add", "a.bin", cwd=repos.work)
    commit_all(repos.work, "a")
    (repos.work / "a.bin").unlink()
    restored = git("checkout", "--", "a.bin", cwd=repos.work)

    assert_no_traceback(added, restored)
    stored = check_store(repos.work / ".git" / "mlx")  # through the symlink
    assert stored.objects == {oid} and not stored.corrupt
    assert not any((repos.work / ".git" / "mlx" / "tmp").iterdir())
    assert not any((other_fs / "tmp").iterdir())
    assert_content(repos.work, "a.bin", oid)
    assert_no_crash_logs(sealed.tmp)


# --- pointer text in paths that are not tracked --------------------------------------------------


def untracked_pointer_repo(sealed) -> tuple[Repos, str, bytes]:
    """docs/example.txt holds real.bin's pointer text but has no filter attribute."""
    repos = make_repo_with_bare_remote(sealed.root)
    real = write_random(repos.work / "real.bin", 100_000, "real")
    commit_all(repos.work, "real")
    git("push", "-q", "origin", "main", cwd=repos.work)
    text = pointer_text(real, 100_000)
    (repos.work / "docs").mkdir()
    (repos.work / "docs" / "example.txt").write_bytes(text)
    commit_all(repos.work, "docs")
    assert git("check-attr", "filter", "docs/example.txt", cwd=repos.work).stdout.endswith(": unspecified\n")
    return repos, real, text


def test_pointer_text_in_an_untracked_path_is_cloned_as_plain_text(sealed) -> None:
    repos, real, text = untracked_pointer_repo(sealed)
    git("push", "-q", "--no-verify", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"

    cloned = clone(repos.remote, dest)

    assert_no_traceback(cloned)
    assert (dest / "docs" / "example.txt").read_bytes() == text
    assert_content(dest, "real.bin", real)
    assert_clean_worktree(dest)


def test_pull_and_checkout_leave_pointer_text_in_an_untracked_path_alone(sealed) -> None:
    repos, real, text = untracked_pointer_repo(sealed)

    results = [mlx("pull", cwd=repos.work, check=False), mlx("checkout", cwd=repos.work, check=False)]

    assert_no_traceback(*results)
    assert (repos.work / "docs" / "example.txt").read_bytes() == text
    assert_clean_worktree(repos.work)


def test_push_ignores_pointer_text_in_an_untracked_path(repos: Repos, sealed) -> None:
    ghost = hashlib.sha256(b"an example in the docs").hexdigest()
    (repos.work / "docs").mkdir()
    (repos.work / "docs" / "pointer-example.txt").write_bytes(pointer_text(ghost, 12))
    # The same blob in a tracked and an untracked path, the untracked one listed first:
    # the copy must not hide the artifact from the push.
    real = write_random(repos.work / "models" / "m.bin", 30_000, "m")
    (repos.work / "docs" / "m-pointer.txt").write_bytes(pointer_text(real, 30_000))
    commit_all(repos.work, "docs")

    pushed = git("push", "origin", "main", cwd=repos.work, check=False)

    assert_no_traceback(pushed)
    assert pushed.returncode == 0, str(pushed)
    dest = sealed.root / "clone"
    cloned = clone(repos.remote, dest)
    assert_no_traceback(cloned)
    assert_content(dest, "models/m.bin", real)
    assert (dest / "docs" / "m-pointer.txt").read_bytes() == pointer_text(real, 30_000)
    assert_clean_worktree(dest)
