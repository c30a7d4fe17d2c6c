"""`git mlx migrate`: taking over a real Git LFS repository (made by git-lfs itself) with
its history kept, and rewriting history so large plain blobs become pointers (issue 7)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import sha256_file, write_random
from tests.support.formats import parse_pointer
from tests.support.lfs import lfs_home
from tests.support.repos import (
    assert_clean_worktree,
    assert_content,
    assert_pointer,
    blob_at,
    clone,
    commit_all,
    make_repo_with_bare_remote,
    remote_oids,
)
from tests.support.stores import assert_local_object, has_local_object, object_path

ATTRS = "filter=mlx diff=mlx merge=mlx -text"
LFS_POINTER_START = b"version https://git-lfs.github.com/spec/v1\n"
MiB = 1024 * 1024


@pytest.fixture
def lfs_env(sealed) -> dict[str, str]:
    """A second HOME where only Git LFS is installed (`git lfs install` writes its global
    filter.lfs.* there), so the LFS repository is made exactly as a Git LFS user makes it."""
    return lfs_home(sealed.root / "lfs-home")


def contents(repo: Path, paths: list[str]) -> dict[str, str]:
    return {p: sha256_file(repo / p) for p in paths}


def make_lfs_repo(root: Path, env: dict[str, str]) -> tuple[Path, list[tuple[str, dict[str, str]]]]:
    """A Git LFS repository with two commits; returns it and (commit id, file hashes) per commit."""
    work = root / "work"
    git("init", "-q", work, cwd=root, env=env)
    (work / ".gitattributes").write_text("# text files\n*.txt text eol=lf\n")
    git("lfs", "track", "*.bin", cwd=work, env=env)
    (work / "models").mkdir()
    (work / "models" / ".gitattributes").write_text(
        '# checkpoints\n"*.pt" filter=lfs diff=lfs merge=lfs -text lockable\n'
    )
    write_random(work / "a.bin", 300 * 1024, "a1")
    write_random(work / "models" / "m.pt", 50 * 1024, "m1")
    (work / "notes.txt").write_text("first\n")
    commit_all_env(work, env, "v1")
    history = [(head(work), contents(work, ["a.bin", "models/m.pt", "notes.txt"]))]
    write_random(work / "a.bin", 310 * 1024, "a2")
    write_random(work / "b.bin", 20 * 1024, "b2")
    commit_all_env(work, env, "v2")
    history.append((head(work), contents(work, ["a.bin", "b.bin", "models/m.pt", "notes.txt"])))
    return work, history


def commit_all_env(repo: Path, env: dict[str, str], message: str) -> None:
    git("add", "-A", cwd=repo, env=env)
    git("commit", "-q", "-m", message, cwd=repo, env=env)


def head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def assert_checkout_matches(repo: Path, rev: str, expected: dict[str, str]) -> None:
    git("checkout", "-q", rev, cwd=repo)
    for path, sha in expected.items():
        assert_content(repo, path, sha)
    assert_clean_worktree(repo)


def lfs_object_files(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / ".git" / "lfs" / "objects").glob("*/*/*") if p.is_file())


# --- from-lfs ----------------------------------------------------------------------------


def test_from_lfs_keeps_old_and_new_commits_byte_identical_in_a_fresh_clone(sealed, lfs_env) -> None:
    work, history = make_lfs_repo(sealed.root, lfs_env)
    assert blob_at(work, "HEAD:a.bin").startswith(LFS_POINTER_START), "git-lfs did not clean a.bin"
    assert blob_at(work, "HEAD:models/m.pt").startswith(LFS_POINTER_START)
    assert len(lfs_object_files(work)) == 4  # a.bin twice, b.bin, models/m.pt
    remote = sealed.root / "remote.git"
    git("init", "-q", "--bare", remote, cwd=sealed.root)
    git("remote", "add", "origin", remote, cwd=work)

    # From here on: the sealed HOME, where only `git mlx install` ran.
    result = mlx("migrate", "from-lfs", cwd=work)

    assert_no_traceback(result)
    assert "imported 4 Git LFS object(s)" in result.stdout
    assert "git add .gitattributes models/.gitattributes" in result.stdout
    assert (work / ".gitattributes").read_text() == f"# text files\n*.txt text eol=lf\n*.bin {ATTRS}\n"
    assert (work / "models" / ".gitattributes").read_text() == (
        '# checkpoints\n"*.pt" filter=mlx diff=mlx merge=mlx -text lockable\n'
    )
    for _rev, files in history:
        for path, oid in files.items():
            if not path.endswith(".txt"):
                assert_local_object(work, oid)
    assert git("config", "--local", "filter.lfs.process", cwd=work).stdout.strip() == "git-mlx filter-process"
    assert "gitmlx-hook" in (work / ".git" / "hooks" / "pre-push").read_text(), "Git LFS's pre-push hook is still there"
    status = git("status", "--porcelain", cwd=work).stdout.splitlines()
    assert sorted(status) == [" M .gitattributes", " M models/.gitattributes"]

    commit_all(work, "move from Git LFS to gitmlx")
    v3 = write_random(work / "a.bin", 320 * 1024, "a3")
    commit_all(work, "v3")
    assert_pointer(work, "a.bin", "HEAD")  # new versions get gitmlx pointers
    assert blob_at(work, f"{history[0][0]}:a.bin").startswith(LFS_POINTER_START)  # history untouched
    git("push", "-q", "origin", "main", cwd=work)
    mlx("push", "--all", cwd=work)
    everything = {oid for _rev, files in history for p, oid in files.items() if not p.endswith(".txt")}
    assert everything | {v3} <= remote_oids(remote)

    # A fresh clone under a HOME with gitmlx's filters only, no Git LFS.
    assert "lfs" not in (sealed.home / ".gitconfig").read_text()
    dest = sealed.root / "fresh"
    clone(remote, dest)
    assert_content(dest, "a.bin", v3)
    assert_clean_worktree(dest)
    again = mlx("migrate", "from-lfs", cwd=dest)  # once per clone: old commits say filter=lfs
    assert "imported 0 Git LFS object(s)" in again.stdout
    assert "warning" not in again.stderr
    for rev, files in history:
        assert_checkout_matches(dest, rev, files)
    assert_checkout_matches(dest, "main", {"a.bin": v3, **{p: h for p, h in history[1][1].items() if p != "a.bin"}})
    assert not (dest / ".git" / "lfs").exists()


def test_from_lfs_skips_and_reports_a_corrupt_lfs_object(sealed, lfs_env) -> None:
    work, history = make_lfs_repo(sealed.root, lfs_env)
    bad_oid = history[0][1]["a.bin"]
    bad = object_path(work / ".git" / "lfs", bad_oid)
    bad.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with open(bad, "r+b") as f:
        f.write(b"\0" * 16)

    result = mlx("migrate", "from-lfs", cwd=work, check=False)

    assert result.returncode == 1, result
    assert_no_traceback(result)
    assert f"error: skipped '{bad}': content hashes to" in result.stderr
    assert "1 Git LFS object(s) failed verification" in result.stderr
    assert "imported 3 Git LFS object(s)" in result.stdout
    assert not has_local_object(work, bad_oid)
    assert_local_object(work, history[1][1]["a.bin"])
    assert f"*.bin {ATTRS}" in (work / ".gitattributes").read_text()  # the rest was still done


def test_from_lfs_fetch_downloads_what_the_clone_lacks_first(sealed, lfs_env) -> None:
    work, history = make_lfs_repo(sealed.root, lfs_env)
    lfs_remote = sealed.root / "lfs-remote.git"
    git("init", "-q", "--bare", lfs_remote, cwd=sealed.root, env=lfs_env)
    git("remote", "add", "origin", lfs_remote, cwd=work, env=lfs_env)
    git("push", "-q", "origin", "main", cwd=work, env=lfs_env)  # git-lfs uploads through its file transfer
    partial = sealed.root / "partial"
    clone(lfs_remote, partial, env={**lfs_env, "GIT_LFS_SKIP_SMUDGE": "1"})
    assert lfs_object_files(partial) == []

    without = mlx("migrate", "from-lfs", cwd=partial)
    assert "warning: 4 object(s) named by Git LFS pointers in history are not here" in without.stderr
    fetched = mlx("migrate", "from-lfs", "--fetch", cwd=partial)

    assert "imported 4 Git LFS object(s)" in fetched.stdout
    assert "warning" not in fetched.stderr
    for _rev, files in history:
        for path, oid in files.items():
            if not path.endswith(".txt"):
                assert_local_object(partial, oid)
    git("checkout", "-q", "--", ".", cwd=partial)  # the pointers checked out earlier now smudge
    git("checkout", "-q", history[0][0], cwd=partial)
    assert_content(partial, "a.bin", history[0][1]["a.bin"])


# --- import ------------------------------------------------------------------------------


def reachable_blob_sizes(repo: Path) -> dict[str, int]:
    """`git rev-list --objects --all | git cat-file --batch-check`: blobs any ref reaches."""
    listed = git("rev-list", "--objects", "--all", cwd=repo).stdout
    shas = "".join(line.split()[0] + "\n" for line in listed.splitlines() if line.strip())
    out = git("cat-file", "--batch-check", cwd=repo, input=shas.encode()).stdout
    return {sha: int(size) for sha, kind, size in (line.split() for line in out.splitlines()) if kind == "blob"}


def make_plain_history(work: Path) -> list[tuple[str, dict[str, str]]]:
    """Three commits with 2-3 MiB files committed as plain blobs (nothing tracked)."""
    history = []
    (work / ".gitattributes").write_text("*.txt text\n")
    for i in range(3):
        write_random(work / "model.bin", 2 * MiB + i, f"model{i}")
        if i != 1:
            write_random(work / "data set" / "weights.bin", 3 * MiB - i, f"weights{i}")
        write_random(work / "small.bin", 10 * 1024, f"small{i}")
        (work / "readme.txt").write_text(f"version {i}\n")
        commit_all(work, f"commit {i}")
        paths = ["model.bin", "data set/weights.bin", "small.bin", "readme.txt"]
        history.append((f"commit {i}", contents(work, paths)))
    return history


def commits_by_subject(repo: Path) -> dict[str, str]:
    out = git("log", "--format=%H %s", "main", cwd=repo).stdout
    return {line.split(" ", 1)[1]: line.split(" ", 1)[0] for line in out.splitlines()}


def test_import_leaves_no_large_blob_and_every_commit_identical(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root, patterns=[])
    history = make_plain_history(repos.work)
    before = commits_by_subject(repos.work)
    assert max(reachable_blob_sizes(repos.work).values()) > 2 * MiB

    result = mlx("migrate", "import", "--include", "*.bin", cwd=repos.work)

    assert_no_traceback(result)
    assert "became gitmlx pointers" in result.stdout
    assert "git push --force origin main" in result.stdout
    assert "git mlx push --all" in result.stdout
    sizes = reachable_blob_sizes(repos.work)
    assert max(sizes.values()) <= MiB, f"blobs over 1 MiB remain: { {s: n for s, n in sizes.items() if n > MiB} }"
    after = commits_by_subject(repos.work)
    assert set(after) == set(before) and set(after.values()).isdisjoint(before.values())
    assert_clean_worktree(repos.work)
    for subject, files in history:
        rev = after[subject]
        assert blob_at(repos.work, f"{rev}:.gitattributes").decode() == f"*.txt text\n*.bin {ATTRS}\n", (
            "each rewritten commit's .gitattributes tracks the pattern, old lines kept"
        )
        for path, sha in files.items():
            if path.endswith(".bin"):
                parsed = parse_pointer(blob_at(repos.work, f"{rev}:{path}"))
                assert parsed is not None and parsed[0] == sha, f"{path!r} at {subject!r} is not its pointer"
        assert_checkout_matches(repos.work, rev, files)
    git("checkout", "-q", "main", cwd=repos.work)

    # The hint's next steps work: objects to the remote, then the rewritten branch.
    mlx("push", "--all", cwd=repos.work)
    git("push", "-q", "--force", "origin", "main", cwd=repos.work)
    dest = sealed.root / "fresh"
    clone(repos.remote, dest)
    for path, sha in history[-1][1].items():
        assert_content(dest, path, sha)
    assert_clean_worktree(dest)


def test_import_above_keeps_small_matching_blobs_as_they_are(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root, patterns=[])
    history = make_plain_history(repos.work)

    result = mlx("migrate", "import", "--include", "*.bin", "--above", "1MiB", cwd=repos.work)

    assert "3 matching file version(s) at or below 1.0 MiB stayed as is" in result.stdout
    after = commits_by_subject(repos.work)
    for subject, files in history:
        rev = after[subject]
        assert parse_pointer(blob_at(repos.work, f"{rev}:model.bin")) is not None
        assert len(blob_at(repos.work, f"{rev}:small.bin")) == 10 * 1024
        assert blob_at(repos.work, f"{rev}:.gitattributes").decode() == (
            f"*.txt text\n/data[[:space:]]set/weights.bin {ATTRS}\n/model.bin {ATTRS}\n"
        ), "with --above, exactly the converted paths are tracked (small.bin stays plain, status clean)"
        assert_checkout_matches(repos.work, rev, files)
    assert max(reachable_blob_sizes(repos.work).values()) <= MiB


def test_import_refuses_a_dirty_work_tree_and_changes_nothing(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root, patterns=[])
    make_plain_history(repos.work)
    before = head(repos.work)
    (repos.work / "readme.txt").write_text("not committed\n")

    result = mlx("migrate", "import", "--include", "*.bin", cwd=repos.work, check=False)

    assert result.returncode == 1, result
    assert_no_traceback(result)
    assert "error: the work tree has uncommitted changes ('readme.txt')" in result.stderr
    assert "hint: commit them or 'git stash' them" in result.stderr
    assert head(repos.work) == before
    assert (repos.work / "readme.txt").read_text() == "not committed\n"


def test_import_usage_errors_exit_2(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root, patterns=[])
    make_plain_history(repos.work)

    no_include = mlx("migrate", "import", cwd=repos.work, check=False)
    bad_size = mlx("migrate", "import", "-I", "*.bin", "--above", "lots", cwd=repos.work, check=False)
    bad_ref = mlx("migrate", "import", "-I", "*.bin", "nope", cwd=repos.work, check=False)

    assert no_include.returncode == 2 and "--include" in no_include.stderr
    assert bad_size.returncode == 2 and "invalid size 'lots'" in bad_size.stderr
    assert bad_ref.returncode == 2 and "'nope' is not a branch or tag" in bad_ref.stderr


def test_import_everything_rewrites_every_branch_tag_and_merge(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root, patterns=[])
    work = repos.work
    base = {"model.bin": write_random(work / "model.bin", 2 * MiB, "m0")}
    commit_all(work, "base")
    git("tag", "v0", cwd=work)
    git("checkout", "-q", "-b", "side", cwd=work)
    side = {**base, "side.bin": write_random(work / "side.bin", 2 * MiB, "s1")}
    commit_all(work, "side")
    git("checkout", "-q", "main", cwd=work)
    main = {"model.bin": write_random(work / "model.bin", 2 * MiB, "m1")}
    commit_all(work, "main")
    git("merge", "-q", "--no-edit", "side", cwd=work)
    merged = {**main, "side.bin": side["side.bin"]}

    mlx("migrate", "import", "--include", "*.bin", "--everything", cwd=work)

    assert max(reachable_blob_sizes(work).values()) <= MiB
    assert len(git("rev-parse", "HEAD^@", cwd=work).stdout.split()) == 2, "the merge is still a merge"
    for rev, files in (("v0", base), ("side", side), ("main~1", main), ("main", merged)):
        assert_checkout_matches(work, rev, files)
        assert f"*.bin {ATTRS}" in blob_at(work, f"{rev}:.gitattributes").decode()
