"""Guarantee 4 and 8 under attack: a missing or damaged remote object, a corrupt local
object, or a hostile pointer never puts wrong or partial bytes in the work tree, never
writes outside the store and work tree, never shows a traceback, and names the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import sha256_file, write_random
from tests.support.formats import MLX_VERSION, parse_pointer, pointer_text
from tests.support.repos import (
    Repos,
    assert_clean_worktree,
    assert_content,
    assert_pointer,
    assert_remote_object,
    clone,
    commit_all,
    corrupt_remote_object,
    has_remote_manifest,
    local_store,
    remote_ref,
    snapshot,
)
from tests.support.stores import (
    assert_local_object,
    commit_with_layout,
    corrupt_local_object,
    local_object_locations,
    object_layout,
    remove_local_object,
    stored_oids,
)

DAMAGE = ["delete", "flip", "truncate"]


def publish(repos: Repos, names: tuple[str, ...] = ("a.bin", "b.bin", "c.bin")) -> dict[str, str]:
    """Commit and push one artifact per name; returns path -> sha256."""
    shas = {name: write_random(repos.work / name, 300_000, name) for name in names}
    commit_all(repos.work, "publish")
    git("push", "-q", "origin", "main", cwd=repos.work)
    for sha in shas.values():
        assert_remote_object(repos.remote, sha)
    return shas


def assert_right_or_pointer(repo: Path, shas: dict[str, str]) -> dict[str, str]:
    """Each file holds its exact content, its pointer text, or is absent; never anything
    else. Returns path -> 'content' | 'pointer' | 'absent'."""
    states = {}
    for path, sha in shas.items():
        file = repo / path
        if not file.exists():
            states[path] = "absent"
        elif sha256_file(file) == sha:
            states[path] = "content"
        else:
            data = file.read_bytes()
            assert parse_pointer(data) == (sha, 300_000), f"{path!r} holds wrong bytes: {data[:100]!r}"
            states[path] = "pointer"
    return states


def assert_store_holds_only_good_objects(repo: Path) -> None:
    store = local_store(repo)
    for oid in stored_oids(store):
        for where in local_object_locations(store, oid):  # loose and packed copies alike
            assert where.sha256() == oid, f"corrupt object {oid[:10]} under a valid name ({where})"
    assert not list(store.glob("tmp/*")), "temporary files left in the store"


def assert_written_only_under(before: set[Path], after: set[Path], *allowed: Path) -> None:
    stray = sorted(p for p in after - before if not any(p.is_relative_to(a) for a in allowed))
    assert not stray, f"files written outside {allowed}: {stray}"


def assert_damage_contained(dest: Path, shas: dict[str, str], how: str, stderr: str) -> None:
    """b.bin is left as its pointer; every other file is right, or (when the damage cut a
    pack that other objects share, as truncation does) left as a pointer and named too."""
    states = assert_right_or_pointer(dest, shas)
    assert states["b.bin"] == "pointer"
    for name, state in states.items():
        if state == "pointer":
            assert f"'{name}'" in stderr, f"{name} was left as a pointer without a message naming it"
    if how != "truncate":
        assert states == {"a.bin": "content", "b.bin": "pointer", "c.bin": "content"}


@pytest.mark.parametrize("how", DAMAGE)
def test_clone_with_bad_remote_object_leaves_its_pointer_and_names_the_file(repos: Repos, sealed, how: str) -> None:
    shas = publish(repos)
    corrupt_remote_object(repos.remote, shas["b.bin"], how)
    dest = sealed.root / "clone"
    before = snapshot(sealed.root)

    result = clone(repos.remote, dest, check=False)

    assert_no_traceback(result)
    assert_written_only_under(before, snapshot(sealed.root), dest)
    assert "'b.bin'" in result.stderr
    assert "git mlx pull" in result.stderr, "the message should say how to finish"
    assert result.returncode != 0, "a clone that could not restore a file must not report success"
    assert_damage_contained(dest, shas, how, result.stderr)
    assert_clean_worktree(dest)
    assert_store_holds_only_good_objects(dest)


@pytest.mark.parametrize("how", DAMAGE)
def test_pull_with_bad_remote_object_leaves_its_pointer_and_names_the_file(repos: Repos, sealed, how: str) -> None:
    shas = publish(repos)
    corrupt_remote_object(repos.remote, shas["b.bin"], how)
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    before = snapshot(sealed.root)

    result = mlx("pull", cwd=dest, check=False)

    assert_no_traceback(result)
    assert_written_only_under(before, snapshot(sealed.root), dest / ".git")
    assert result.returncode == 1
    assert "'b.bin'" in result.stderr
    assert_damage_contained(dest, shas, how, result.stderr)
    assert_clean_worktree(dest)
    assert_store_holds_only_good_objects(dest)


#: The fix, run in a clone that has the file. A missing manifest or a truncated pack is
#: found by push itself (an object is skipped only if its manifest validates and its packs
#: are long enough: a GET and a size per pack). Flipped bytes keep the size: only a full
#: rebuild finds them, which every push cannot afford, so `fsck --remote --full` names
#: the file and `--repair` uploads it again.
REPAIR = {
    "delete": ("push", "--all"),
    "truncate": ("push", "--all"),
    "flip": ("fsck", "--remote", "--full", "--repair"),
}


@pytest.mark.parametrize("how", DAMAGE)
def test_a_good_clone_repairs_a_bad_remote_object(repos: Repos, sealed, how: str) -> None:
    shas = publish(repos)
    corrupt_remote_object(repos.remote, shas["b.bin"], how)
    dest = sealed.root / "clone"
    cloned = clone(repos.remote, dest, check=False)
    if how == "flip":  # the consumer is told the fix; the good clone's full check names the file
        assert "git mlx fsck --remote --full --repair" in cloned.stderr, cloned.stderr
        found = mlx("fsck", "--remote", "--full", cwd=repos.work, check=False)
        assert found.returncode == 1 and "'b.bin'" in found.stderr, str(found)
        assert "git mlx fsck --remote --full --repair" in found.stderr, found.stderr

    repaired = mlx(*REPAIR[how], cwd=repos.work)
    pulled = mlx("pull", cwd=dest, check=False)

    assert_no_traceback(repaired, pulled)
    assert pulled.returncode == 0, str(pulled)
    for name, sha in shas.items():
        assert_content(dest, name, sha)
    assert_clean_worktree(dest)
    assert mlx("fsck", "--remote", "--full", cwd=repos.work).returncode == 0


@pytest.mark.parametrize("layout", ["packed", "loose"])
def test_checkout_never_writes_a_corrupt_local_object(repos: Repos, layout: str) -> None:
    shas = {name: write_random(repos.work / name, 300_000, name) for name in ("a.bin", "b.bin", "c.bin")}
    commit_with_layout(repos.work, "b.bin", layout)
    assert object_layout(repos.work, shas["b.bin"]) == layout
    corrupt_local_object(repos.work, shas["b.bin"], "flip")  # same size, different bytes
    (repos.work / "b.bin").unlink()

    result = git("checkout", "--", "b.bin", cwd=repos.work, check=False)

    assert_no_traceback(result)
    assert "'b.bin'" in result.stderr
    assert assert_right_or_pointer(repos.work, shas)["b.bin"] in ("pointer", "absent")
    assert_store_holds_only_good_objects(repos.work)
    bad = local_store(repos.work) / "bad" / shas["b.bin"]
    assert bad.is_file() and bad.stat().st_size == 300_000, "the corrupt object was not quarantined in bad/"
    assert sha256_file(bad) != shas["b.bin"]
    for name in ("a.bin", "c.bin"):  # the objects beside it (in its pack) are intact
        assert_local_object(repos.work, shas[name], 300_000)


def hostile_pointers(root: Path, real_oid: str) -> dict[str, bytes]:
    climb = "aaaa/" + "../" * 7  # from objects/aa/aa/ up to the test's folder
    return {
        "dotdot.bin": pointer_text(f"{climb}escaped-relative", 10),
        "absolute.bin": pointer_text(f"{root}/escaped-absolute", 10),
        "nonhex.bin": pointer_text("g" * 64, 10),
        "huge.bin": pointer_text(real_oid, 2**64),
        "upper.bin": pointer_text(real_oid.upper(), 300_000),
        "crlf.bin": pointer_text(real_oid, 300_000).replace(b"\n", b"\r\n"),
        "extra-key.bin": (
            f"version {MLX_VERSION}\next-0-x sha256:{real_oid}\noid sha256:{real_oid}\nsize 300000\n"
        ).encode(),
    }


def commit_raw_blobs(repo: Path, blobs: dict[str, bytes]) -> None:
    """Commit exact bytes under tracked paths, bypassing the clean filter."""
    for path, data in blobs.items():
        sha = git("hash-object", "-w", "--no-filters", "--stdin", cwd=repo, input=data).stdout.strip()
        git("update-index", "--add", "--cacheinfo", f"100644,{sha},{path}", cwd=repo)
    git("commit", "-q", "-m", "hostile pointers", cwd=repo)


def test_hostile_pointers_are_checked_out_as_plain_content_by_clone_and_pull(repos: Repos, sealed) -> None:
    shas = publish(repos, ("real.bin",))
    hostile = hostile_pointers(sealed.root, shas["real.bin"])
    commit_raw_blobs(repos.work, hostile)
    pushed = git("push", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    before = snapshot(sealed.root)

    cloned = clone(repos.remote, dest, check=False)
    pulled = mlx("pull", cwd=dest, check=False)
    checked_out = mlx("checkout", cwd=dest, check=False)

    assert_no_traceback(pushed, cloned, pulled, checked_out)
    assert_written_only_under(before, snapshot(sealed.root), dest)
    assert not (sealed.root / "escaped-relative").exists()
    assert not (sealed.root.parent / "escaped-relative").exists()
    assert not (sealed.root / "escaped-absolute").exists()
    assert cloned.returncode == 0, str(cloned)
    assert pulled.returncode == 0, str(pulled)
    for path, data in hostile.items():
        assert (dest / path).read_bytes() == data, f"{path!r} was not left exactly as committed"
    assert_content(dest, "real.bin", shas["real.bin"])
    assert stored_oids(local_store(dest)) == {shas["real.bin"]}
    for line in cloned.stderr.splitlines():
        if line.startswith(("error:", "warning:")) and "clone" not in line:
            assert any(f"'{path}'" in line for path in hostile), f"message does not name a file: {line}"


@pytest.mark.parametrize("layout", ["packed", "loose"])
def test_pre_push_refuses_when_an_object_is_missing_locally_and_on_the_remote(repos: Repos, layout: str) -> None:
    shas = {name: write_random(repos.work / name, 5000, name) for name in ("a.bin", "lost.bin")}
    commit_with_layout(repos.work, "lost.bin", layout)
    assert object_layout(repos.work, shas["lost.bin"]) == layout
    remove_local_object(repos.work, shas["lost.bin"])
    assert_local_object(repos.work, shas["a.bin"], 5000)

    result = git("push", "origin", "main", cwd=repos.work, check=False)

    assert_no_traceback(result)
    assert result.returncode != 0
    assert "'lost.bin'" in result.stderr
    assert remote_ref(repos.remote) is None, "git pushed the ref although an object could not be uploaded"
    assert not has_remote_manifest(repos.remote, shas["lost.bin"])


def test_pre_push_accepts_an_object_missing_locally_that_the_remote_has(repos: Repos, sealed) -> None:
    shas = publish(repos, ("a.bin",))
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    assert_pointer(dest, "a.bin")
    (dest / "note.txt").write_text("a change that is not an artifact\n")
    commit_all(dest)

    result = git("push", "origin", "main", cwd=dest, check=False)

    assert result.returncode == 0, str(result)
    assert remote_ref(repos.remote) == git("rev-parse", "HEAD", cwd=dest).stdout.strip()
    assert_remote_object(repos.remote, shas["a.bin"])


@pytest.mark.parametrize("command", [("diff", "--stat"), ("add", "a.bin", "b.bin")])
def test_a_file_cut_short_is_named_with_the_fix_when_git_reads_it(repos: Repos, sealed, command) -> None:
    shas = publish(repos, ("a.bin", "b.bin"))
    dest = sealed.root / "consumer"
    clone(repos.remote, dest)
    data = (dest / "a.bin").read_bytes()
    (dest / "a.bin").write_bytes(data[:123_456])  # what git leaves when killed mid-write
    (dest / "b.bin").write_bytes((dest / "b.bin").read_bytes()[:1000] + b"edited")  # an edit: no warning

    read = git(*command, cwd=dest)

    assert_no_traceback(read)
    assert "'a.bin' holds only the first 123456 of the 300000 bytes" in read.stderr
    assert "'git checkout -- a.bin' restores it" in read.stderr
    assert "b.bin" not in read.stderr
    if command[0] == "diff":
        git("checkout", "--", "a.bin", cwd=dest)
        assert sha256_file(dest / "a.bin") == shas["a.bin"]
