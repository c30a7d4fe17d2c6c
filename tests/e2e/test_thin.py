"""Thin checkouts (`mlx.thin`): the work-tree file is the only local copy of an artifact
the remote holds; the clone still checks out, edits and switches versions like any other."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import sha256_file, write_random
from tests.support.repos import Repos, assert_clean_worktree, assert_content, commit_all, local_store
from tests.support.stores import stored_oids

MiB = 1024 * 1024
BIG = 48 * MiB


def publish(repos: Repos, seed: str = "v1") -> dict[str, str]:
    shas = {"model.bin": write_random(repos.work / "model.bin", BIG, seed)}
    for i in range(6):
        shas[f"small/s{i}.bin"] = write_random(repos.work / "small" / f"s{i}.bin", 150_000 + i, f"small{i}")
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    return shas


def thin_clone(repos: Repos, dest: Path) -> None:
    assert_no_traceback(git("clone", "-q", "-c", "mlx.thin=true", repos.remote, dest, cwd=dest.parent))


def allocated_beyond(roots: list[Path], work_tree: Path, skip: set[Path]) -> int:
    """Bytes of allocated blocks (st_blocks * 512) under `roots`, each inode once, leaving
    out `skip` and inodes that are work-tree files (a hard link to one is not a copy)."""
    in_work_tree = set()
    for folder, dirs, names in os.walk(work_tree):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            st = os.lstat(os.path.join(folder, name))
            in_work_tree.add((st.st_dev, st.st_ino))
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if Path(folder, d) not in skip]
            for name in names:
                st = os.lstat(os.path.join(folder, name))
                key = (st.st_dev, st.st_ino)
                if key in seen or key in in_work_tree:
                    continue
                seen.add(key)
                total += st.st_blocks * 512
    return total


def test_thin_clone_keeps_one_copy(repos: Repos, sealed) -> None:
    shas = publish(repos)
    dest = sealed.root / "clone"
    thin_clone(repos, dest)

    for path, sha in shas.items():
        assert_content(dest, path, sha)
    assert_clean_worktree(dest)
    assert stored_oids(local_store(dest)) == set()
    content = sum((dest / p).stat().st_size for p in shas)
    extra = allocated_beyond([dest / ".git", sealed.home], dest, {dest / ".git" / "objects"})
    print(f"\nthin clone of {content} bytes: .git (without objects/) and HOME allocate {extra} bytes more")
    assert extra <= 4 * MiB + content // 20, extra
    assert_no_traceback(mlx("fsck", cwd=dest))


def test_thin_edit_in_place_restore_and_switch(repos: Repos, sealed) -> None:
    v1 = publish(repos, "v1")
    with open(repos.work / "model.bin", "r+b") as f:  # v2: one MiB changed in the middle
        f.seek(20 * MiB)
        f.write(os.urandom(MiB))
    v2 = sha256_file(repos.work / "model.bin")
    commit_all(repos.work, "v2")
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    thin_clone(repos, dest)
    assert_content(dest, "model.bin", v2)

    with open(dest / "model.bin", "r+b") as f:  # a training script overwriting in place
        f.seek(5 * MiB)
        f.write(b"\0" * 4096)
    edited = sha256_file(dest / "model.bin")
    assert "model.bin" in git("status", "--porcelain", cwd=dest).stdout
    assert_no_traceback(git("stash", "-q", cwd=dest))
    assert_content(dest, "model.bin", v2)
    assert_no_traceback(git("stash", "pop", "-q", cwd=dest))
    assert_content(dest, "model.bin", edited)
    assert_no_traceback(git("checkout", "--", "model.bin", cwd=dest))
    assert_content(dest, "model.bin", v2)
    assert_clean_worktree(dest)

    assert_no_traceback(git("checkout", "-q", "HEAD~1", cwd=dest))
    assert_content(dest, "model.bin", v1["model.bin"])
    assert_clean_worktree(dest)
    assert_no_traceback(git("checkout", "-q", "main", cwd=dest))
    assert_content(dest, "model.bin", v2)
    assert_clean_worktree(dest)
    # (`git status` of the edited file stored the edit, as the clean filter always does.)
    assert not stored_oids(local_store(dest)) & {v1["model.bin"], v2}
    assert_no_traceback(mlx("fsck", cwd=dest))


def test_thin_checkout_offline_leaves_pointer_naming_thin(repos: Repos, sealed) -> None:
    publish(repos, "v1")
    write_random(repos.work / "model.bin", BIG // 8, "v2")
    commit_all(repos.work, "v2")
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    thin_clone(repos, dest)
    (repos.remote / "mlx").rename(repos.remote / "mlx-away")  # the artifact remote is gone

    result = git("checkout", "-q", "HEAD~1", cwd=dest, check=False)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: cannot restore 'model.bin'")]
    assert len(errors) == 1 and "mlx.thin" in errors[0], result.stderr
    assert (dest / "model.bin").read_bytes().startswith(b"version https://gitmlx.dev/spec/v1\n")


def allocated(folder: Path) -> int:
    return sum(p.lstat().st_blocks * 512 for p in folder.rglob("*") if p.is_file())


def test_prune_in_a_clone_turned_thin_frees_the_duplicated_bytes(repos: Repos, sealed) -> None:
    shas = publish(repos)
    dest = sealed.root / "clone"
    assert_no_traceback(git("clone", "-q", repos.remote, dest, cwd=sealed.root))
    store = local_store(dest)
    before = allocated(store)
    assert stored_oids(store) == set(shas.values())
    git("config", "mlx.thin", "true", cwd=dest)

    pruned = mlx("prune", cwd=dest)

    assert_no_traceback(pruned)
    assert_index_holds_linked_stat(dest, "model.bin")  # else `git status` cleans it back into the store
    assert f"{len(shas)} of them checked out, now only in the work tree" in pruned.output, pruned.output
    content = sum((dest / p).stat().st_size for p in shas)
    assert before - allocated(store) >= content, (before, allocated(store))
    assert stored_oids(store) == set()
    du = mlx("du", cwd=dest).output
    assert any(line.startswith("work tree only") and f" {len(shas)} " in line for line in du.splitlines()), du
    assert_clean_worktree(dest)
    assert_no_traceback(git("checkout", "-q", "HEAD~1", cwd=dest), git("checkout", "-q", "main", cwd=dest))
    for path, sha in shas.items():
        assert_content(dest, path, sha)
    assert_clean_worktree(dest)
    assert_no_traceback(mlx("fsck", cwd=dest))


def test_thin_clone_records_the_stat_data_of_the_linked_file(repos: Repos, sealed) -> None:
    """A thin placement hard-links a large file as its next version's chunk source, which
    changes the file's ctime. The index must hold the ctime after the link: with the one
    before, a `git status` in another second took the file for modified and cleaned it
    again, and in a thin clone that clean put a copy back into the store (seen on CI)."""
    publish(repos)
    dest = sealed.root / "clone"
    thin_clone(repos, dest)

    assert_index_holds_linked_stat(dest, "model.bin")


def assert_index_holds_linked_stat(work_tree: Path, path: str) -> None:
    """The index holds `path`'s ctime as it is now, after its chunk-source link was made."""
    listed = git("ls-files", "--debug", path, cwd=work_tree).stdout
    ctime = next(line.split()[1] for line in listed.splitlines() if line.strip().startswith("ctime:"))
    st = os.lstat(work_tree / path)
    assert st.st_nlink == 2, "no chunk-source link: the test proves nothing here"
    assert ctime == f"{st.st_ctime_ns // 10**9}:{st.st_ctime_ns % 10**9}", (listed, st)
