"""`git mlx migrate export`: leaving gitmlx with history kept working, for Git LFS (checked
by real git-lfs in a HOME where gitmlx is not configured) or for plain git (issue 16)."""

from __future__ import annotations

from pathlib import Path

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import sha, sha256_file, write_random
from tests.support.lfs import LFS_POINTER_START, contents, lfs_object_path, make_lfs_repo
from tests.support.repos import (
    assert_clean_worktree,
    assert_content,
    assert_pointer,
    blob_at,
    clone,
    commit_all,
    make_repo_with_bare_remote,
    settle_index,
)
from tests.support.stores import remove_local_object

LFS_ATTRS = "filter=lfs diff=lfs merge=lfs -text"


def make_history(root: Path) -> tuple[Path, list[tuple[str, dict[str, str]]]]:
    """A gitmlx repo (a nested .gitattributes too) with two commits pushed to its origin;
    returns it and (subject, path -> sha256) per commit."""
    repos = make_repo_with_bare_remote(root)
    work = repos.work
    (work / "data").mkdir()
    (work / "data" / ".gitattributes").write_text("# tables\n*.csv filter=mlx diff=mlx merge=mlx -text\n")
    files = {"a.bin": 300 * 1024, "data/t.csv": 40 * 1024, "notes.txt": 0}
    for path, size in files.items():
        if size:
            write_random(work / path, size, f"{path}-1")
    (work / "notes.txt").write_text("plain text stays plain\n")
    commit_all(work, "v1")
    history = [("v1", {p: sha256_file(work / p) for p in files})]
    write_random(work / "a.bin", 310 * 1024, "a-2")
    write_random(work / "b.bin", 20 * 1024, "b-2")
    commit_all(work, "v2")
    history.append(("v2", {p: sha256_file(work / p) for p in [*files, "b.bin"]}))
    git("push", "-q", "origin", "main", cwd=work)
    return work, history


def commit_of(repo: Path, subject: str) -> str:
    out = git("log", "--format=%H %s", "HEAD", cwd=repo).stdout
    return next(line.split()[0] for line in out.splitlines() if line.split(" ", 1)[1] == subject)


def push_to_fresh_lfs_remote(work: Path, root: Path) -> Path:
    """As docs/migration.md says after an export: gitmlx leaves the clone, `git lfs push
    --all` uploads the objects (git-lfs's standalone file transfer: a local path needs no
    server), then the branch goes; returns the new bare remote."""
    mlx("uninstall", "--local", cwd=work)
    bare = root / "lfs-remote.git"
    git("init", "-q", "--bare", bare, cwd=root)
    git("remote", "add", "lfs", bare, cwd=work)
    git("lfs", "push", "--all", "lfs", cwd=work)
    git("push", "-q", "lfs", "main", cwd=work)
    return bare


def test_export_to_lfs_then_git_lfs_push_serves_a_git_lfs_only_clone(sealed, lfs_env) -> None:
    work, history = make_history(sealed.root)
    gone = history[0][1]["a.bin"]
    remove_local_object(work, gone)  # only the artifact remote has it now: export fetches it

    result = mlx("migrate", "export", "--to", "lfs", cwd=work)
    assert_no_traceback(result)
    assert "fetched 1 of 1" in result.stderr + result.stdout, result.stderr
    assert "git lfs push --all origin" in result.stdout
    assert_clean_worktree(work)
    for subject, files in history:  # every version: an LFS pointer, its object in .git/lfs
        rev = commit_of(work, subject)
        for path, digest in files.items():
            blob = blob_at(work, f"{rev}:{path}")
            if path == "notes.txt":
                assert blob == b"plain text stays plain\n"
                continue
            assert blob.startswith(LFS_POINTER_START) and f"oid sha256:{digest}\n".encode() in blob, blob
            assert sha256_file(lfs_object_path(work, digest)) == digest
    top = blob_at(work, "HEAD:.gitattributes").decode()
    assert f"*.bin {LFS_ATTRS}" in top and "mlx" not in top
    assert blob_at(work, "HEAD:data/.gitattributes") == f"# tables\n*.csv {LFS_ATTRS}\n".encode()
    assert "filter.lfs" not in git("config", "--local", "--list", cwd=work).stdout  # not left to gitmlx

    lfs_remote = push_to_fresh_lfs_remote(work, sealed.root)

    assert "mlx" not in Path(lfs_env["GIT_CONFIG_GLOBAL"]).read_text()
    dest = sealed.root / "lfs-clone"
    clone(lfs_remote, dest, env=lfs_env)
    git_lfs = {"env": lfs_env}
    assert git("check-attr", "filter", "a.bin", cwd=dest, **git_lfs).stdout == "a.bin: filter: lfs\n"
    for path, digest in history[1][1].items():
        assert_content(dest, path, digest)
    git("checkout", "-q", "HEAD~1", cwd=dest, **git_lfs)
    for path, digest in history[0][1].items():
        assert_content(dest, path, digest)
    assert git("status", "--porcelain", cwd=dest, **git_lfs).stdout == ""


def test_export_to_git_puts_content_back_in_plain_history(sealed) -> None:
    work, history = make_history(sealed.root)

    result = mlx("migrate", "export", "--to", "git", cwd=work)
    assert_no_traceback(result)
    assert_clean_worktree(work)
    for subject, files in history:
        rev = commit_of(work, subject)
        for path, digest in files.items():
            assert sha(blob_at(work, f"{rev}:{path}")) == digest, f"{subject}:{path} is not its content"
    assert "filter=" not in blob_at(work, "HEAD:.gitattributes").decode()
    assert blob_at(work, "HEAD:data/.gitattributes") == b"# tables\n*.csv -text\n"
    for path, digest in history[1][1].items():
        assert_content(work, path, digest)

    plain = sealed.root / "plain-home"  # no gitmlx anywhere: an empty global config
    plain.mkdir()
    env = {"HOME": str(plain), "GIT_CONFIG_GLOBAL": str(plain / ".gitconfig")}
    (plain / ".gitconfig").write_text("[advice]\n\tdetachedHead = false\n")
    dest = sealed.root / "plain-clone"
    clone(work, dest, env=env)
    git("checkout", "-q", commit_of(dest, "v1"), cwd=dest, env=env)
    for path, digest in history[0][1].items():
        assert_content(dest, path, digest)


def test_export_to_lfs_after_from_lfs_keeps_the_old_lfs_pointers(sealed, lfs_env) -> None:
    work, history = make_lfs_repo(sealed.root, lfs_env)  # two commits made by git-lfs
    old_pointer = blob_at(work, "HEAD~1:a.bin")
    mlx("migrate", "from-lfs", cwd=work)
    commit_all(work, "to gitmlx")
    write_random(work / "a.bin", 100 * 1024, "a3")
    commit_all(work, "v3")
    history.append(("HEAD", contents(work, ["a.bin", "b.bin", "models/m.pt", "notes.txt"])))

    assert_no_traceback(mlx("migrate", "export", "--to", "lfs", cwd=work))
    # Clean where Git LFS is installed: here (gitmlx only) git has no lfs filter, and a
    # racy re-hash of a file would show its content as modified against its LFS pointer.
    assert git("status", "--porcelain", cwd=work, env=lfs_env).stdout == ""
    assert blob_at(work, "HEAD~3:a.bin") == old_pointer  # Git LFS's own pointers stay as they were
    assert blob_at(work, "HEAD:a.bin").startswith(LFS_POINTER_START)
    assert "filter.lfs" not in git("config", "--local", "--list", cwd=work).stdout  # from-lfs's takeover is undone

    dest = sealed.root / "lfs-clone"
    clone(push_to_fresh_lfs_remote(work, sealed.root), dest, env=lfs_env)
    for rev, (_, files) in zip(["main~3", "main~2", "main"], history, strict=True):
        git("checkout", "-q", rev, cwd=dest, env=lfs_env)
        for path, digest in files.items():
            assert_content(dest, path, digest)
        assert git("status", "--porcelain", cwd=dest, env=lfs_env).stdout == ""


def test_export_refuses_a_dirty_tree_and_missing_objects_before_changing_anything(sealed) -> None:
    work, history = make_history(sealed.root)
    before = git("rev-parse", "HEAD", cwd=work).stdout

    (work / "a.bin").write_bytes(b"edited")
    dirty = mlx("migrate", "export", "--to", "lfs", cwd=work, check=False)
    assert dirty.returncode == 1 and "uncommitted changes ('a.bin')" in dirty.stderr, dirty.stderr
    assert "git mlx migrate export" in dirty.stderr
    git("checkout", "--", "a.bin", cwd=work)

    gone = history[1][1]["b.bin"]
    settle_index(work, ["b.bin"])  # else a racy re-clean of b.bin would store it again
    remove_local_object(work, gone)
    git("config", "mlx.url", str(sealed.root / "empty-remote"), cwd=work)  # a remote without it
    refused = mlx("migrate", "export", "--to", "git", cwd=work, check=False)
    assert refused.returncode == 1, refused.stderr
    assert "'b.bin'" in refused.stderr and "--allow-missing" in refused.stderr, refused.stderr
    assert git("rev-parse", "HEAD", cwd=work).stdout == before
    assert not (work / ".git" / "filter-repo" / "commit-map").exists()

    kept = mlx("migrate", "export", "--to", "git", "--allow-missing", cwd=work)
    assert_no_traceback(kept)
    assert git("rev-parse", "HEAD", cwd=work).stdout != before
    assert assert_pointer(work, "b.bin", "HEAD")[0] == gone  # no content to put back: the pointer stays
    assert sha(blob_at(work, "HEAD:a.bin")) == history[1][1]["a.bin"]
