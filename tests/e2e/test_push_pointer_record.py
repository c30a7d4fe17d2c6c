"""The pointer record (docs/local-store.md, "Pointer record"): the clean filter notes the
blob id of each pointer it emits, so the pre-push hook learns those pointers without
asking git for sizes and contents. A record that lies, or none at all, still pushes
exactly the objects the pushed trees name."""

from __future__ import annotations

from pathlib import Path

from tests.support.commands import git, mlx
from tests.support.formats import parse_pointer
from tests.support.repos import Repos, add_commit, assert_content, clone, local_store, remote_oids

RECORD = "pointer-blobs"


def _tree_oids(repo: Path) -> dict[str, str]:
    """Path -> oid of each pointer committed at HEAD, read from git (not the record)."""
    names = git("ls-tree", "-r", "--name-only", "HEAD", cwd=repo).stdout.split()
    found = {}
    for name in names:
        pointer = parse_pointer(git("cat-file", "blob", f"HEAD:{name}", cwd=repo).stdout.encode())
        if pointer is not None:
            found[name] = pointer[0]
    return found


def _git_commands(trace: Path) -> list[str]:
    return [line.split("trace: built-in: ", 1)[1] for line in trace.read_text().splitlines() if "built-in: " in line]


def _push_traced(repos: Repos, tmp: Path) -> list[str]:
    """`git push` with GIT_TRACE: the git commands run, the hook's among them."""
    trace = tmp / "trace.txt"
    git("push", "-q", "origin", "main", cwd=repos.work, env={"GIT_TRACE": str(trace)})
    return _git_commands(trace)


def _assert_served(repos: Repos, shas: dict[str, str], root: Path) -> None:
    assert set(_tree_oids(repos.work).values()) <= remote_oids(repos.remote)
    copy = root / "copy"
    clone(repos.remote, copy)
    for path, sha in shas.items():
        assert_content(copy, path, sha)


def test_the_hook_reads_recorded_pointers_without_asking_git_for_them(repos: Repos, tmp_path: Path) -> None:
    git("push", "-q", "origin", "main", cwd=repos.work)  # .gitattributes: not a recorded blob
    shas = add_commit(repos.work, {f"f{i}.bin": 2000 + i for i in range(6)})
    record = (local_store(repos.work) / RECORD).read_text().splitlines()

    commands = _push_traced(repos, tmp_path)

    assert len(record) == 6, record
    assert not [c for c in commands if c.startswith("git cat-file --batch --buffer")], commands
    assert not [c for c in commands if c.startswith("git ls-tree -r -l")], commands
    _assert_served(repos, shas, tmp_path)


def test_a_push_without_a_record_reads_the_pointers_from_git(repos: Repos, tmp_path: Path) -> None:
    shas = add_commit(repos.work, {f"f{i}.bin": 3000 + i for i in range(4)})
    (local_store(repos.work) / RECORD).unlink()

    commands = _push_traced(repos, tmp_path)

    assert [c for c in commands if c.startswith("git cat-file --batch --buffer")], commands
    _assert_served(repos, shas, tmp_path)


def test_a_record_that_lies_still_pushes_the_objects_the_trees_name(repos: Repos, tmp_path: Path) -> None:
    shas = add_commit(repos.work, {"a.bin": 5000, "b.bin": 6000, "c.bin": 7000})
    path = local_store(repos.work) / RECORD
    lines = [line.split() for line in path.read_text().splitlines()]
    (a_blob, a_oid, a_size), (b_blob, b_oid, b_size), (c_blob, c_oid, c_size) = lines
    lies = [
        f"{a_blob} {b_oid} {b_size}",  # another object's pointer under a's blob
        f"{b_blob} {b_oid} {int(b_size) + 1}",  # the right object, the wrong size
        f"{c_blob} {c_oid} 0{c_size}",  # a size written as the format forbids
        f"{c_blob[:20]}",  # torn
        "not a line at all",
    ]
    path.write_text("\n".join(lies) + "\n")

    git("push", "-q", "origin", "main", cwd=repos.work)

    assert {a_oid, b_oid, c_oid} <= remote_oids(repos.remote)
    _assert_served(repos, shas, tmp_path)


def test_the_record_of_a_sha256_repository_is_used_and_pushes(sealed, tmp_path: Path) -> None:
    remote = sealed.root / "remote.git"
    work = sealed.root / "work"
    git("init", "-q", "--bare", "--object-format=sha256", remote, cwd=sealed.root)
    git("init", "-q", "--object-format=sha256", work, cwd=sealed.root)
    git("remote", "add", "origin", remote, cwd=work)
    mlx("install", cwd=work)
    mlx("track", "*.bin", cwd=work)
    add_commit(work, {}, message="track")
    git("push", "-q", "origin", "main", cwd=work)
    shas = add_commit(work, {"m.bin": 4000, "n.bin": 4500})
    record = (local_store(work) / RECORD).read_text().split()

    commands = _push_traced(Repos(work, remote), tmp_path)

    assert len(record[0]) == 64, record
    assert not [c for c in commands if c.startswith("git cat-file --batch --buffer")], commands
    _assert_served(Repos(work, remote), shas, tmp_path)
