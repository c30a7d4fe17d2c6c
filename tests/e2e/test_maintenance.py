"""`git mlx fsck`, `prune` and `gc --remote`: damage is found and named with its fix,
prune keeps whatever a ref, index, stash, worktree, unpushed or recent commit needs, and
gc never deletes what a ref of the git remote reaches, even around a push in flight."""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from tests.support import remote_layout
from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import write_random
from tests.support.repos import (
    Repos,
    assert_content,
    assert_remote_object,
    clone,
    commit_all,
    corrupt_remote_object,
    local_store,
    remote_files,
    remote_oids,
    remote_store,
)
from tests.support.stores import (
    assert_local_object,
    commit_with_layout,
    corrupt_local_object,
    object_layout,
    stored_oids,
)

SIZE = 300_000
MARCH_2024 = 1709251200  # 2024-03-01T00:00:00Z; the sealed environment dates commits 2024-01-01
RECENT = "2024-02-28T00:00:00Z"  # within the default 3 days of MARCH_2024


def push_file(repos: Repos, name: str, size: int = SIZE) -> str:
    """Commit `name` with fresh content and push it (its own pack); its sha256."""
    sha = write_random(repos.work / name, size, name)
    commit_all(repos.work, f"add {name}")
    git("push", "-q", "origin", "main", cwd=repos.work)
    assert_remote_object(repos.remote, sha)
    return sha


# --- fsck ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["packed", "loose"])
def test_fsck_quarantines_a_corrupt_local_object_names_its_file_and_exits_1(repos: Repos, layout: str) -> None:
    shas = {n: write_random(repos.work / n, SIZE, n) for n in ("a.bin", "b.bin")}
    commit_with_layout(repos.work, "b.bin", layout)
    assert object_layout(repos.work, shas["b.bin"]) == layout
    assert mlx("fsck", cwd=repos.work).returncode == 0
    (damaged,) = corrupt_local_object(repos.work, shas["b.bin"], "flip")  # same size, different bytes
    damaged_bytes = damaged.read()

    result = mlx("fsck", cwd=repos.work, check=False)

    assert_no_traceback(result)
    assert result.returncode == 1, str(result)
    assert f"error: object {shas['b.bin'][:10]} (293.0 KiB) used by 'b.bin' is corrupt" in result.stderr
    assert "hint: run 'git mlx pull'" in result.stderr and "git add --renormalize -- b.bin" in result.stderr
    assert "a.bin" not in result.stderr
    store = local_store(repos.work)
    assert stored_oids(store) == {shas["a.bin"]}
    assert (store / "bad" / shas["b.bin"]).read_bytes() == damaged_bytes, "bad/ does not hold the damaged bytes"
    if layout == "packed":  # its pack was rewritten without it; the object beside it is intact
        assert not damaged.path.exists(), "the pack holding the corrupt object is still there"
    assert_local_object(repos.work, shas["a.bin"], SIZE)
    assert mlx("fsck", cwd=repos.work).returncode == 0  # nothing corrupt left under a valid name
    # The hint works: the work-tree file is intact, so renormalizing stores it again.
    git("add", "--renormalize", "--", "b.bin", cwd=repos.work)
    assert_local_object(repos.work, shas["b.bin"], SIZE)


def test_fsck_remote_names_the_file_of_a_missing_manifest_and_a_truncated_pack_and_the_fixes_work(
    repos: Repos,
) -> None:
    shas = {n: push_file(repos, n) for n in ("a.bin", "b.bin", "c.bin")}
    corrupt_remote_object(repos.remote, shas["a.bin"], "delete")
    corrupt_remote_object(repos.remote, shas["b.bin"], "truncate")
    assert mlx("fsck", cwd=repos.work).returncode == 0  # the local store is fine

    result = mlx("fsck", "--remote", cwd=repos.work, check=False)

    assert_no_traceback(result)
    assert result.returncode == 1, str(result)
    lines = result.stderr.splitlines()
    a_line = next(i for i, line in enumerate(lines) if line.startswith("error: 'a.bin'"))
    assert f"({shas['a.bin'][:10]}, 293.0 KiB)" in lines[a_line] and "no manifest" in lines[a_line]
    assert lines[a_line + 1] == "hint: upload it from this clone: run 'git mlx push --all'"
    b_line = next(i for i, line in enumerate(lines) if line.startswith("error: 'b.bin'"))
    assert "is truncated" in lines[b_line]
    assert lines[b_line + 1] == "hint: upload it again from this clone: run 'git mlx push --all'"
    assert "c.bin" not in result.stderr
    assert "3 objects HEAD needs, 2 with problems" in result.stdout

    mlx("push", "--all", cwd=repos.work)  # the fix for both: push checks manifests and pack sizes
    assert mlx("fsck", "--remote", "--full", cwd=repos.work).returncode == 0


def test_fsck_remote_full_rebuilds_each_object_and_finds_flipped_bytes(repos: Repos) -> None:
    shas = {n: push_file(repos, n) for n in ("a.bin", "c.bin")}
    corrupt_remote_object(repos.remote, shas["c.bin"], "flip")  # same size: only the hash tells
    store = local_store(repos.work)
    before = stored_oids(store)

    shallow = mlx("fsck", "--remote", cwd=repos.work)
    full = mlx("fsck", "--remote", "--full", cwd=repos.work, check=False)

    assert "0 with problems" in shallow.stdout
    assert_no_traceback(full)
    assert full.returncode == 1, str(full)
    assert "error: 'c.bin'" in full.stderr and "damaged" in full.stderr
    assert "'a.bin'" not in full.stderr
    assert stored_oids(store) == before and not list(store.glob("tmp/*")), "the full check wrote into the store"


# --- prune ---------------------------------------------------------------------------------


def test_prune_keeps_what_refs_index_stash_worktrees_unpushed_and_recent_commits_need(repos: Repos, sealed) -> None:
    work = repos.work
    roles = ["tag", "branch", "wt_head", "wt_index", "index", "stash", "old", "boundary", "recent", "head"]
    content = {r: sealed.root / "content" / r for r in roles + ["unpushed", "wip_tip", "stash_top"]}
    sha = {r: write_random(p, SIZE, r) for r, p in content.items()}
    commits = {}
    for role in roles:
        shutil.copy(content[role], work / "f.bin")
        env = {"GIT_COMMITTER_DATE": RECENT} if role in ("recent", "head") else None
        git("add", "f.bin", cwd=work)
        git("commit", "-q", "-m", role, cwd=work, env=env)
        commits[role] = git("rev-parse", "HEAD", cwd=work).stdout.strip()
    git("push", "-q", "origin", "main", cwd=work)
    git("tag", "t1", commits["tag"], cwd=work)
    git("branch", "side", commits["branch"], cwd=work)
    # Unpushed commits whose objects are on the remote all the same ('git mlx push' sends
    # objects, not refs): only the unpushed rule protects the one below the tip.
    git("checkout", "-q", "-b", "wip", cwd=work)
    for role in ("unpushed", "wip_tip"):
        shutil.copy(content[role], work / "f.bin")
        commit_all(work, role)
    mlx("push", "origin", "wip", cwd=work)
    git("checkout", "-q", "main", cwd=work)
    # The other worktree stages other content over its HEAD's: only its HEAD needs wt_head.
    git("worktree", "add", "-q", "--detach", sealed.root / "wt", commits["wt_head"], cwd=work)
    shutil.copy(content["wt_index"], sealed.root / "wt" / "f.bin")
    git("add", "f.bin", cwd=sealed.root / "wt")
    # Two stashes: the older one lives only in refs/stash's reflog (stash@{1}).
    for role in ("stash", "stash_top"):
        shutil.copy(content[role], work / "f.bin")
        git("stash", "-q", cwd=work)
    shutil.copy(content["index"], work / "staged.bin")
    git("add", "staged.bin", cwd=work)
    assert set(sha.values()) - {sha["stash_top"]} <= remote_oids(repos.remote)
    store = local_store(work)
    assert set(sha.values()) <= stored_oids(store)
    now = {"GIT_MLX_NOW": str(MARCH_2024)}

    dry = mlx("prune", "--dry-run", cwd=work, env=now)
    assert stored_oids(store) >= set(sha.values())
    assert f"would prune {sha['old'][:10]} (293.0 KiB)" in dry.stdout
    assert dry.stdout.count("would prune ") == 2, dry.stdout  # one line per object, then the summary

    result = mlx("prune", cwd=work, env=now)

    assert_no_traceback(result)
    assert "pruned 1 of" in result.stdout and "freeing 293.0 KiB" in result.stdout
    assert sha["old"] not in stored_oids(store)
    for role, oid in sha.items():
        if role != "old":
            assert_local_object(work, oid, SIZE)
    with sqlite3.connect(store / "index.sqlite") as db:
        rows = db.execute("SELECT count(*) FROM local_chunks WHERE oid = ?", (sha["old"],)).fetchone()[0]
    assert rows == 0, "the chunk index still points into the pruned object"
    # Everything kept is still usable: the stash applies and the other worktree is intact.
    git("stash", "drop", "-q", cwd=work)
    git("stash", "pop", "-q", cwd=work)
    assert_content(work, "f.bin", sha["stash"])


def test_prune_never_deletes_an_unpushed_object_or_one_the_remote_lacks(repos: Repos, sealed) -> None:
    old = push_file(repos, "a.bin")  # pushed, then replaced: prunable
    v2 = write_random(repos.work / "a.bin", SIZE, "v2")  # the same
    commit_all(repos.work, "v2 (pushed)")
    git("push", "-q", "origin", "main", cwd=repos.work)
    unpushed = write_random(repos.work / "a.bin", SIZE, "v3")
    commit_all(repos.work, "v3 (not pushed)")
    write_random(repos.work / "a.bin", SIZE, "v4")
    commit_all(repos.work, "v4 (not pushed)")
    lost = remote_layout.read_manifest_bytes(remote_store(repos.remote), old)
    store = local_store(repos.work)
    now = {"GIT_MLX_NOW": str(MARCH_2024)}

    remote_layout.delete_manifest(remote_store(repos.remote), old)  # the remote lacks it for now
    kept = mlx("prune", cwd=repos.work, env=now)
    assert old in stored_oids(store) and unpushed in stored_oids(store)
    assert v2 not in stored_oids(store)
    assert "pruned 1 of 4" in kept.stdout and "kept 1 object(s) no recent ref needs" in kept.stderr
    assert "does not hold them" in kept.stderr

    remote_layout.put_manifest(remote_store(repos.remote), old, lost)
    pruned = mlx("prune", "--verify-remote", cwd=repos.work, env=now)
    assert old not in stored_oids(store)
    assert unpushed in stored_oids(store), "prune deleted an object of an unpushed commit"
    assert "pruned 1 of 3" in pruned.stdout


# --- gc --remote ---------------------------------------------------------------------------


def abandon_branch(repos: Repos, name: str, file: str) -> str:
    """Push a branch with one new artifact, then delete it everywhere: its object becomes
    unreachable. Returns the object's sha256."""
    git("checkout", "-q", "-b", name, cwd=repos.work)
    sha = write_random(repos.work / file, SIZE, file)
    commit_all(repos.work, f"{name}: {file}")
    git("push", "-q", "origin", name, cwd=repos.work)
    git("checkout", "-q", "main", cwd=repos.work)
    git("push", "-q", "origin", f":{name}", cwd=repos.work)
    git("branch", "-q", "-D", name, cwd=repos.work)
    assert_remote_object(repos.remote, sha)
    return sha


def gc(repos: Repos, *args: str, now: float | None = None, cwd: Path | None = None):
    env = {"GIT_MLX_NOW": str(int(now))} if now is not None else None
    result = mlx("gc", "--remote", *args, cwd=cwd or repos.work, env=env)
    assert_no_traceback(result)
    return result


def test_gc_dry_run_reports_the_bytes_it_would_free_and_changes_nothing(repos: Repos) -> None:
    push_file(repos, "a.bin")
    abandon_branch(repos, "tmp", "big.bin")
    before = remote_files(repos.remote)

    result = gc(repos)
    explicit = gc(repos, "--dry-run", "--grace", "0")

    assert remote_files(repos.remote) == before
    assert "would mark for deletion after 7 day(s): 1 manifest(s) and 1 pack(s) (293." in result.stdout
    assert "would delete now: 0 manifest(s) and 0 pack(s) (0 B), freeing 0 B" in result.stdout
    assert "dry run: nothing was changed" in result.stderr
    assert "after 0 day(s)" in explicit.stdout


def test_gc_deletes_what_no_ref_reaches_only_after_the_grace_period(repos: Repos, sealed) -> None:
    keep = push_file(repos, "a.bin")
    drop = abandon_branch(repos, "tmp", "big.bin")
    t0 = time.time()

    marked = gc(repos, "--confirm", now=t0)
    early = gc(repos, "--confirm", now=t0 + 6 * 86400)
    dry = gc(repos, now=t0 + 8 * 86400)
    done = gc(repos, "--confirm", now=t0 + 8 * 86400)

    assert "marked 1 manifest(s) and 1 pack(s)" in marked.stdout
    assert "deleted 0 manifest(s) and 0 pack(s) (0 B): freed 0 B" in early.stdout
    assert "would delete now: 1 manifest(s) and 1 pack(s) (293." in dry.stdout
    assert "deleted 1 manifest(s) and 1 pack(s) (293." in done.stdout and "freed 293." in done.stdout
    assert remote_oids(repos.remote) == {keep}
    assert drop not in remote_oids(repos.remote)
    dest = sealed.root / "clone"
    clone(repos.remote, dest)
    assert_content(dest, "a.bin", keep)
    assert mlx("fsck", "--remote", "--full", cwd=dest).returncode == 0


def test_gc_deletes_a_killed_writers_old_temp_files_on_a_directory_remote_and_nothing_else(repos: Repos) -> None:
    keep = push_file(repos, "a.bin")
    tmp = remote_store(repos.remote) / "tmp"
    tmp.mkdir(exist_ok=True)
    old = time.time() - 8 * 86400
    (tmp / "put-1-00000000000000aa").write_bytes(b"a killed push's pack")  # past grace and a day
    (tmp / "put-2-00000000000000bb").write_bytes(b"a push in flight")  # fresh
    (tmp / "spack-not-the-remotes").write_bytes(b"the repository's own store's")  # not put-*
    for name in ("put-1-00000000000000aa", "spack-not-the-remotes"):
        os.utime(tmp / name, (old, old))

    dry = gc(repos, "--grace", "0")
    assert sorted(p.name for p in tmp.iterdir()) == [
        "put-1-00000000000000aa",
        "put-2-00000000000000bb",
        "spack-not-the-remotes",
    ]
    swept = gc(repos, "--confirm", "--grace", "0")

    assert "aborted 1 unfinished upload" in swept.stdout, swept.stdout
    assert "aborted" not in dry.stdout
    assert sorted(p.name for p in tmp.iterdir()) == ["put-2-00000000000000bb", "spack-not-the-remotes"]
    assert remote_oids(repos.remote) == {keep}


def test_gc_keeps_what_any_ref_of_the_git_remote_reaches_fetched_or_not(repos: Repos, sealed) -> None:
    push_file(repos, "a.bin")
    other = sealed.root / "other"
    clone(repos.remote, other)
    reached = {}
    # From another clone: a branch, a tag on a commit no branch has, and a ref outside
    # refs/heads and refs/tags (as code-review hosts keep): none of them fetched here.
    for name, ref in (
        ("branch.bin", "refs/heads/feature"),
        ("tag.bin", "refs/tags/v2"),
        ("pr.bin", "refs/pull/1/head"),
    ):
        git("checkout", "-q", "--detach", "main", cwd=other)
        reached[name] = write_random(other / name, SIZE, name)
        commit_all(other, name)
        git("push", "-q", "origin", f"HEAD:{ref}", cwd=other)
    garbage = abandon_branch(repos, "tmp", "garbage.bin")

    for _ in range(2):
        result = gc(repos, "--confirm", "--grace", "0")

    assert "deleted 1 manifest(s)" in result.stdout, result.stdout
    assert set(reached.values()) <= remote_oids(repos.remote)
    assert garbage not in remote_oids(repos.remote)


def test_gc_around_a_push_in_flight_leaves_the_clone_byte_identical(repos: Repos, sealed) -> None:
    """Format 1, whose manifest keys a file can block (format 2's shard written between a
    push's packs and its ref: tests/unit/test_shard_remote.py)."""
    remote_layout.make_format_1(remote_store(repos.remote))
    first = push_file(repos, "a.bin")
    second = write_random(repos.work / "b.bin", SIZE, "b.bin")
    commit_all(repos.work, "add b.bin")
    # The push gets as far as its pack: its manifest cannot be written yet (a file stands
    # where the manifest's folder goes), so git sends no ref.
    blocker = remote_store(repos.remote) / "manifests" / second[0:2] / second[2:4]
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_bytes(b"")
    packs_before = set((remote_store(repos.remote) / "packs").rglob("*.pack"))
    stalled = git("push", "-q", "origin", "main", cwd=repos.work, check=False)
    assert stalled.returncode != 0
    assert set((remote_store(repos.remote) / "packs").rglob("*.pack")) - packs_before, "the pack was not uploaded"

    # gc strikes while the push is in flight: with no grace, the new pack is marked at once.
    mid = gc(repos, "--confirm", "--grace", "0")
    assert "marked 0 manifest(s) and 1 pack(s)" in mid.stdout

    blocker.unlink()
    git("push", "-q", "origin", "main", cwd=repos.work)  # the push completes
    for _ in range(2):
        after = gc(repos, "--confirm", "--grace", "0")
        assert "deleted 0 manifest(s) and 0 pack(s)" in after.stdout, after.stdout

    # Objects uploaded by 'git mlx push' ahead of their ref survive gc runs within the grace period.
    third = write_random(repos.work / "c.bin", SIZE, "c.bin")
    commit_all(repos.work, "add c.bin")
    mlx("push", cwd=repos.work)
    t0 = time.time()
    gc(repos, "--confirm", now=t0)
    early = gc(repos, "--confirm", now=t0 + 86400)
    assert "deleted 0 manifest(s) and 0 pack(s)" in early.stdout
    git("push", "-q", "origin", "main", cwd=repos.work)
    gc(repos, "--confirm", now=t0 + 30 * 86400)

    dest = sealed.root / "clone"
    clone(repos.remote, dest)
    for name, sha in (("a.bin", first), ("b.bin", second), ("c.bin", third)):
        assert_content(dest, name, sha)
    assert mlx("fsck", "--remote", "--full", cwd=dest).returncode == 0


def test_gc_without_remote_flag_or_with_both_modes_is_a_usage_error(repos: Repos) -> None:
    for args in (["gc"], ["gc", "--remote", "--dry-run", "--confirm"], ["gc", "--remote", "nope"]):
        result = mlx(*args, cwd=repos.work, check=False)
        assert_no_traceback(result)
        assert result.returncode == 2, str(result)
