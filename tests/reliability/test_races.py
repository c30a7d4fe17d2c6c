"""Guarantee 7: several git processes on one store, or on one remote, at once. Two
worktrees sharing a store clean and smudge the same large file at the same moment; two
clones push the same new artifact to the same remote at the same moment; a prune runs
while a fetch does. Each side succeeds or fails cleanly, and nothing is lost.

CI runs a few rounds; `-m slow` runs 20, and 10 pushes to S3.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import write_random
from tests.support.formats import pointer_text
from tests.support.integrity import check_remote_dir, check_remote_s3, check_store, classify, take_crash_logs
from tests.support.repos import clone, commit_all, local_store, make_repo_with_bare_remote
from tests.support.s3 import S3Setup, make_s3_repo
from tests.support.trials import Tally, at_once

MIB = 1024 * 1024


def note_failures(tally: Tally, results: list[subprocess.CompletedProcess], what: str) -> None:
    for r in results:
        if r.returncode != 0:
            tally.rerun_failures.append(f"{what}: {' '.join(r.args)} exited {r.returncode}\n{r.stderr}")
        if "Traceback" in r.stdout + r.stderr:
            tally.tracebacks.append(r.stderr[:2000])


@pytest.mark.parametrize("rounds", [pytest.param(2, id="ci"), pytest.param(20, id="full", marks=pytest.mark.slow)])
def test_two_worktrees_clean_and_smudge_the_same_large_file_at_once(rounds: int, sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root)
    one = repos.work
    two = sealed.root / "second-worktree"
    git("worktree", "add", "-q", "-b", "side", two, cwd=one)
    store = local_store(one)
    assert local_store(two) == store, "worktrees of one repository share its store"
    tally = Tally("two worktrees, same file, same store")

    for n in range(rounds):
        tally.trials += 1
        name = f"big-{n}.bin"
        sha = write_random(one / name, 12 * MIB, f"race-{n}")
        write_random(two / name, 12 * MIB, f"race-{n}")
        note_failures(tally, at_once((["git", "add", name], one), (["git", "add", name], two)), "add")
        for tree in (one, two):
            blob = git("cat-file", "blob", f":{name}", cwd=tree, check=False).stdout.encode()
            if blob != pointer_text(sha, 12 * MIB):
                tally.rerun_failures.append(f"{tree.name}: index holds {blob[:60]!r}")
        report = check_store(store)
        tally.corrupt += report.corrupt
        tally.tmp_leftovers |= report.tmp_files
        if sha not in report.objects:
            tally.rerun_failures.append(f"round {n}: object not in the store after two adds")

        # Both worktrees now smudge it at once, fetching into the shared store.
        git("commit", "-q", "-m", name, cwd=one)
        git("commit", "-q", "-m", name, cwd=two)
        git("push", "-q", "origin", "main", "side", cwd=one)
        (store / "objects" / sha[:2] / sha[2:4] / sha).unlink()
        (one / name).unlink()
        (two / name).unlink()
        smudged = at_once((["git", "checkout", "--", name], one), (["git", "checkout", "--", name], two))
        note_failures(tally, smudged, "checkout")
        for tree in (one, two):
            if classify(tree / name, sha, 12 * MIB) != "content":
                tally.wrong_bytes.append(f"{tree.name}/{name} after concurrent smudge")
        tally.corrupt += check_store(store).corrupt
        tally.tracebacks += take_crash_logs(sealed.tmp)
    tally.assert_clean()


def push_race(rounds: int, sealed, make, check) -> Tally:
    """Two clones of one repository push the same new artifact, on two branches, at once."""
    repos = make(sealed.root)
    git("push", "-q", "origin", "main", cwd=repos.work)
    a, b = sealed.root / "clone-a", sealed.root / "clone-b"
    clone(repos.remote, a)
    clone(repos.remote, b)
    tally = Tally("two clones push the same artifact at once")
    expected: dict[str, tuple[str, int]] = {}
    for n in range(rounds):
        tally.trials += 1
        sizes = {"shared.bin": 6 * MIB + n, f"round-{n}.bin": 300_000}
        for side in (a, b):
            for path, size in sizes.items():
                expected[path] = (write_random(side / path, size, f"{path}-{n}"), size)
            (side / "who.txt").write_text(side.name)
            commit_all(side, f"round {n} from {side.name}")
        pushed = at_once(
            (["git", "push", "-q", "origin", f"HEAD:refs/heads/{a.name}-{n}"], a),
            (["git", "push", "-q", "origin", f"HEAD:refs/heads/{b.name}-{n}"], b),
        )
        note_failures(tally, pushed, "push")
        report = check()
        tally.corrupt += report.problems
        for path, (sha, _) in expected.items():
            if path in sizes and sha not in report.objects:
                tally.rerun_failures.append(f"round {n}: {path} ({sha[:10]}) is not on the remote")
    for side in (a, b):  # and a fresh clone of each side's last branch restores every byte
        dest = sealed.root / f"verify-{side.name}"
        cloned = git("clone", "-q", "-b", f"{side.name}-{rounds - 1}", repos.remote, dest, cwd=sealed.root, check=False)
        assert_no_traceback(cloned)
        for path in ("shared.bin", f"round-{rounds - 1}.bin"):
            if classify(dest / path, *expected[path]) != "content":
                tally.wrong_bytes.append(f"{dest.name}/{path}")
    tally.tracebacks += take_crash_logs(sealed.tmp)
    return tally


@pytest.mark.parametrize("rounds", [pytest.param(2, id="ci"), pytest.param(20, id="full", marks=pytest.mark.slow)])
def test_two_clones_push_the_same_new_artifact_to_a_directory_remote_at_once(rounds: int, sealed) -> None:
    bare = sealed.root / "remote.git"  # where make_repo_with_bare_remote puts it
    tally = push_race(rounds, sealed, make_repo_with_bare_remote, lambda: check_remote_dir(bare / "mlx"))
    tally.name += " (directory remote)"
    tally.assert_clean()


@pytest.mark.slow  # the directory-remote race runs in CI
@pytest.mark.parametrize("rounds", [pytest.param(10, id="full")])
def test_two_clones_push_the_same_new_artifact_to_s3_at_once(rounds: int, s3: S3Setup, sealed) -> None:
    tally = push_race(
        rounds,
        sealed,
        lambda root: make_s3_repo(root, s3.url("race"), s3.endpoint),
        lambda: check_remote_s3(s3.admin, s3.bucket, "race"),
    )
    tally.name += " (S3)"
    tally.assert_clean()


def test_a_prune_during_a_fetch_loses_nothing(sealed) -> None:
    if git("mlx", "prune", "--help", cwd=sealed.root, check=False).returncode != 0:
        pytest.skip("this gitmlx has no 'git mlx prune' yet (another issue adds it)")
    repos = make_repo_with_bare_remote(sealed.root)
    write_random(repos.work / "old.bin", 4 * MIB, "old")
    commit_all(repos.work, "old")
    (repos.work / "old.bin").unlink()
    shas = {f"new-{i}.bin": write_random(repos.work / f"new-{i}.bin", 4 * MIB, f"new-{i}") for i in range(4)}
    commit_all(repos.work, "new")
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    mlx("fetch", "--all", cwd=dest)  # old.bin's object too: prunable (remote has it, HEAD does not need it)

    for path in shas:
        (local_store(dest) / "objects" / shas[path][:2] / shas[path][2:4] / shas[path]).unlink()
    raced = at_once((["git", "mlx", "fetch"], dest), (["git", "mlx", "prune"], dest))
    again = mlx("fetch", cwd=dest, check=False)
    pulled = mlx("pull", cwd=dest, check=False)

    assert all("Traceback" not in r.stderr for r in raced)
    assert all(r.returncode in (0, 1) for r in raced), raced
    assert again.returncode == 0 and pulled.returncode == 0, f"{again}\n{pulled}"
    report = check_store(local_store(dest))
    assert not report.corrupt
    for path, sha in shas.items():
        assert classify(dest / path, sha, 4 * MIB) == "content", path
