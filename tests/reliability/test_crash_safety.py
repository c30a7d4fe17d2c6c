"""Guarantee 6 under SIGKILL: kill the whole process group (git, the filter process, the
hooks and every `git-mlx` child) at a random moment of `git add` (clean), `git checkout`
(smudge, fetching through the filter), `git push` (pre-push upload) and `git mlx fetch`.

After every kill: no object under a valid name in the local store or on the remote has
wrong bytes (re-hashed; every manifest decoded and its object rebuilt from the packs), no
work-tree file holds anything but its content, its pointer or nothing, no traceback, and
`git mlx fsck` (when it exists) is clean. Then the same command, run again, completes and
gives byte-identical results. The only manual step is the one git itself asks for after a
crash: removing its own `.git/index.lock`.

The CI kills each command 3 times while it runs; `-m slow` 20 times (`full`). Delays are
drawn from a seeded RNG over the time an uninterrupted run takes, so some kills land
before the filter starts; a delay past the end of the run is a trial that did not kill
(counted, not towards the kills).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import write_random
from tests.support.formats import pointer_text
from tests.support.integrity import (
    check_remote_dir,
    check_store,
    classify,
    fsck_problems,
    no_traceback,
    take_crash_logs,
)
from tests.support.repos import clone, commit_all, local_store, make_repo_with_bare_remote
from tests.support.trials import Run, Tally, run_until, wait_group_gone

MIB = 1024 * 1024
FILES = {"a.bin": 3 * MIB, "sub/c.bin": 1 * MIB, "d.bin": 200_000, "empty.bin": 0}

TRIALS = [pytest.param(3, id="ci"), pytest.param(20, id="full", marks=pytest.mark.slow)]


@dataclass
class Scenario:
    """One command under test: how to reset before a trial, run it, and judge the state."""

    name: str
    cwd: Path
    args: list[str]
    reset: Callable[[int], None]
    after_kill: Callable[[Tally], None]
    after_rerun: Callable[[Tally, Run], None]
    env: dict[str, str] | None = None


def write_files(repo: Path, seed: str = "") -> dict[str, tuple[str, int]]:
    return {path: (write_random(repo / path, size, seed + path), size) for path, size in FILES.items()}


def remove_git_lock(repo: Path, tally: Tally) -> None:
    """What git asks a user to do after a crash ("remove the file manually")."""
    lock = repo / ".git" / "index.lock"
    if lock.exists():
        lock.unlink()
        tally.git_locks_removed += 1


def wipe(path: Path) -> None:
    if path.exists():
        for p in path.rglob("*"):
            if not p.is_symlink():
                p.chmod(0o755 if p.is_dir() else 0o644)
        shutil.rmtree(path)


def check_local(repo: Path, tally: Tally, where: str) -> set[str]:
    report = check_store(local_store(repo))
    tally.corrupt += [f"{where}: {c}" for c in report.corrupt]
    tally.tmp_leftovers |= {f"{repo.name}/store/{name}" for name in report.tmp_files}
    return report.objects


def run_trials(scenario: Scenario, trials: int, sealed) -> Tally:
    tally = Tally(f"kill -9 during {scenario.name}")
    spans = []
    for parity in (0, 1):  # resets alternate between two starting states: time each
        scenario.reset(parity)
        baseline = run_until(scenario.args, scenario.cwd, None, scenario.env)
        assert baseline.returncode == 0, f"uninterrupted {scenario.name} failed:\n{baseline.stderr}"
        scenario.after_rerun(tally, baseline)
        assert not tally.failures(), f"the uninterrupted run is already wrong: {tally.failures()}"
        spans.append(max(baseline.seconds, 0.05))
    rng = random.Random(f"crash-{scenario.name}")
    # `trials` kills that land while the command runs; a delay past its end is a trial too,
    # but does not count towards them (at most twice as many trials in all).
    trial = 0
    while tally.killed < trials and trial < 2 * trials:
        scenario.reset(trial)
        delay = rng.uniform(0.02, spans[trial % 2])
        killed = run_until(scenario.args, scenario.cwd, delay, scenario.env)
        tally.trials += 1
        tally.killed += killed.killed
        if not killed.killed:  # it finished first: now we know how long it takes when warm
            spans[trial % 2] = min(spans[trial % 2], max(killed.seconds, 0.05))
        tally.tracebacks += no_traceback(killed.stdout, killed.stderr)
        scenario.after_kill(tally)
        tally.fsck += fsck_problems(scenario.cwd)
        rerun = run_until(scenario.args, scenario.cwd, None, scenario.env)
        if rerun.returncode != 0:
            failure = f"trial {trial} (kill at {delay:.2f} s): exit {rerun.returncode}\n{rerun.stderr}"
            tally.rerun_failures.append(failure)
        tally.tracebacks += no_traceback(rerun.stdout, rerun.stderr)
        known = len(tally.rerun_failures)
        scenario.after_rerun(tally, rerun)
        where = f"trial {trial} (kill at {delay:.2f} s, killed={killed.killed}): "
        tally.rerun_failures[known:] = [where + failure for failure in tally.rerun_failures[known:]]
        tally.fsck += fsck_problems(scenario.cwd)
        tally.tracebacks += take_crash_logs(sealed.tmp)
        trial += 1
    if tally.killed < trials:
        tally.notes.append(f"only {tally.killed} of {tally.trials} trials killed the command while it ran")
    return tally


# --- git add: the clean filter ---------------------------------------------------------------


@pytest.mark.parametrize("trials", TRIALS)
def test_kill_during_add_leaves_no_corrupt_object_and_a_rerun_completes(trials: int, sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root)
    work = repos.work
    expected = write_files(work)
    store = local_store(work)

    def reset(trial: int) -> None:
        (work / ".git" / "index.lock").unlink(missing_ok=True)
        git("read-tree", "HEAD", cwd=work)
        if trial % 2 == 0:
            wipe(store)

    def after_kill(tally: Tally) -> None:
        check_local(work, tally, "after kill")
        for path, (sha, size) in expected.items():  # add must never touch the user's files
            if classify(work / path, sha, size) != "content":
                tally.wrong_bytes.append(f"{path} changed by an interrupted add")
        remove_git_lock(work, tally)

    def after_rerun(tally: Tally, run: Run) -> None:
        objects = check_local(work, tally, "after rerun")
        for path, (sha, size) in expected.items():
            blob = git("cat-file", "blob", f":{path}", cwd=work, check=False)
            if blob.stdout.encode() != pointer_text(sha, size):
                tally.rerun_failures.append(f"{path}: index holds {blob.stdout[:80]!r}")
            if sha not in objects:
                tally.rerun_failures.append(f"{path}: object {sha[:10]} not in the store")
        status = git("status", "--porcelain", cwd=work).stdout.splitlines()
        if any(not line.startswith("A ") for line in status):
            tally.rerun_failures.append(f"git status after add: {status}")

    scenario = Scenario("git add (clean)", work, ["git", "add", "-A"], reset, after_kill, after_rerun)
    run_trials(scenario, trials, sealed).assert_clean()


# --- git checkout: the smudge filter, fetching what the store lacks ---------------------------


def is_strict_prefix(path: Path, source: Path) -> bool:
    """True when `path` is shorter than `source` and equals its beginning."""
    size = path.stat().st_size
    if size >= source.stat().st_size:
        return False
    with open(path, "rb") as a, open(source, "rb") as b:
        while block := a.read(MIB):
            if b.read(len(block)) != block:
                return False
    return True


def published(sealed) -> tuple[Path, dict[str, tuple[str, int]]]:
    """A bare remote with FILES pushed (embedded directory remote); returns (bare, expected)."""
    repos = make_repo_with_bare_remote(sealed.root)
    expected = write_files(repos.work)
    commit_all(repos.work, "artifacts")
    git("push", "-q", "origin", "main", cwd=repos.work)
    return repos.remote, expected


@pytest.mark.parametrize("writer", ["git", "gitmlx", "thin"])
@pytest.mark.parametrize("trials", TRIALS)
def test_kill_during_checkout_leaves_no_wrong_bytes_and_a_rerun_completes(trials: int, writer: str, sealed) -> None:
    """writer=gitmlx: the default, git writes pointers and gitmlx renames each verified
    file over its pointer; git: with mlx.directplace=0 git writes the content itself;
    thin: mlx.thin, gitmlx moves each download out of the store into the work tree."""
    bare, expected = published(sealed)
    source = sealed.root / "work"  # the author's files, to tell a truncated copy from wrong bytes
    dest = sealed.root / "consumer"
    git("clone", "-q", "--no-checkout", bare, dest, cwd=sealed.root)
    if writer != "gitmlx":
        git("config", *(["mlx.directplace", "0"] if writer == "git" else ["mlx.thin", "true"]), cwd=dest)

    def reset(trial: int) -> None:
        (dest / ".git" / "index.lock").unlink(missing_ok=True)
        (dest / ".git" / "index").unlink(missing_ok=True)
        for entry in dest.iterdir():
            if entry.name != ".git":
                wipe(entry) if entry.is_dir() else entry.unlink()
        if trial % 2 == 0:
            wipe(local_store(dest))  # smudge must fetch, through the filter's delayed downloads

    def after_kill(tally: Tally) -> None:
        check_local(dest, tally, "after kill")
        for path, (sha, size) in expected.items():
            if classify(dest / path, sha, size) != "wrong":
                continue
            if writer == "git" and is_strict_prefix(dest / path, source / path):
                # git writes the filter's verified output straight into the final path
                # (entry.c, write_entry): killed mid-write, git leaves a prefix of the right
                # bytes, as it does for any file. gitmlx never wrote it; counted, reported.
                tally.git_truncated += 1
            else:
                tally.wrong_bytes.append(f"{path}: {(dest / path).stat().st_size} bytes after the kill")
        remove_git_lock(dest, tally)

    def after_rerun(tally: Tally, run: Run) -> None:
        check_local(dest, tally, "after rerun")
        for path, (sha, size) in expected.items():
            if classify(dest / path, sha, size) != "content":
                tally.rerun_failures.append(f"{path} not restored by the rerun")
        status = git("status", "--porcelain", cwd=dest).stdout
        if status:
            tally.rerun_failures.append(f"git status after checkout:\n{status}")

    args = ["git", "checkout", "-f", "main"]
    scenario = Scenario("git checkout (smudge)", dest, args, reset, after_kill, after_rerun)
    run_trials(scenario, trials, sealed).assert_clean()


# --- git push: the pre-push upload ------------------------------------------------------------


#: With a 70 MiB file too: a new incompressible object of 8 MiB or more is uploaded as a
#: solo pack (its bytes, named by its oid); from 16 MiB on (to a directory remote) it is
#: copied while its chunks are still being hashed.
WITH_SOLO = {**FILES, "big.bin": 70 * MIB}


@pytest.mark.parametrize("files", [pytest.param(FILES, id="packs"), pytest.param(WITH_SOLO, id="solo")])
@pytest.mark.parametrize("trials", TRIALS)
def test_kill_during_push_leaves_no_corrupt_remote_object_and_a_rerun_completes(
    trials: int, files: dict[str, int], sealed
) -> None:
    repos = make_repo_with_bare_remote(sealed.root)
    work = repos.work
    expected = {path: (write_random(work / path, size, path), size) for path, size in files.items()}
    commit_all(work, "artifacts")
    oids = {sha for sha, _ in expected.values()}
    remotes = [repos.remote]

    def reset(trial: int) -> None:
        # A new, empty remote for every trial, under a new path: the local chunk index
        # knows what each remote holds by its URL (reusing a wiped one: see test_races).
        remotes.append(sealed.root / f"remote-{trial}.git")
        git("init", "-q", "--bare", remotes[-1], cwd=sealed.root)
        git("remote", "set-url", "origin", remotes[-1], cwd=work)
        git("update-ref", "-d", "refs/remotes/origin/main", cwd=work, check=False)

    def after_kill(tally: Tally) -> None:
        bare = remotes[-1]
        report = check_remote_dir(bare / "mlx")
        tally.corrupt += [f"remote after kill: {p}" for p in report.problems]
        tally.tmp_leftovers |= {f"{bare.name}/{p.name}" for p in (bare / "mlx" / "tmp").glob("*")}
        if git("rev-parse", "-q", "--verify", "refs/heads/main", cwd=bare, check=False).returncode == 0:
            missing = oids - set(report.objects)
            if missing:  # objects reach the remote before any ref that needs them
                tally.corrupt.append(f"the ref reached the remote before {len(missing)} of its objects")
        check_local(work, tally, "after kill")

    def after_rerun(tally: Tally, run: Run) -> None:
        bare = remotes[-1]
        report = check_remote_dir(bare / "mlx")
        tally.corrupt += [f"remote after rerun: {p}" for p in report.problems]
        if set(report.objects) != oids:
            tally.rerun_failures.append(f"remote holds {len(report.objects)} of {len(oids)} objects after the rerun")
        head = git("rev-parse", "HEAD", cwd=work).stdout.strip()
        if git("rev-parse", "main", cwd=bare, check=False).stdout.strip() != head:
            tally.rerun_failures.append("the remote ref is not the pushed commit")

    args = ["git", "push", "-q", "origin", "main"]
    scenario = Scenario("git push (pre-push upload)", work, args, reset, after_kill, after_rerun)
    tally = run_trials(scenario, trials, sealed)
    # And the remote is good to clone from: byte-identical files in a fresh clone.
    dest = sealed.root / "verify"
    clone(remotes[-1], dest)
    for path, (sha, size) in expected.items():
        if classify(dest / path, sha, size) != "content":
            tally.rerun_failures.append(f"{path} does not clone back byte-identical")
    tally.assert_clean()


# --- git mlx fetch ---------------------------------------------------------------------------


@pytest.mark.parametrize("trials", TRIALS)
def test_kill_during_fetch_leaves_no_corrupt_object_and_a_rerun_completes(trials: int, sealed) -> None:
    bare, expected = published(sealed)
    dest = sealed.root / "consumer"
    clone(bare, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    oids = {sha for sha, _ in expected.values()}

    def reset(trial: int) -> None:
        wipe(local_store(dest))

    def after_kill(tally: Tally) -> None:
        check_local(dest, tally, "after kill")
        for path, (sha, size) in expected.items():  # fetch never touches the work tree
            if classify(dest / path, sha, size) != "pointer":
                tally.wrong_bytes.append(f"{path} changed by an interrupted fetch")

    def after_rerun(tally: Tally, run: Run) -> None:
        objects = check_local(dest, tally, "after rerun")
        if not oids <= objects:
            tally.rerun_failures.append(f"store holds {len(oids & objects)} of {len(oids)} objects after the rerun")

    scenario = Scenario("git mlx fetch", dest, ["git", "mlx", "fetch", "-q"], reset, after_kill, after_rerun)
    run_trials(scenario, trials, sealed).assert_clean()


# --- git mlx pull: content placed from the store by gitmlx itself (tmp file + rename) -------------


@pytest.mark.parametrize("thin", [False, True], ids=["copies", "thin"])
@pytest.mark.parametrize("trials", TRIALS)
def test_kill_during_pull_leaves_no_wrong_bytes_and_a_rerun_completes(trials: int, thin: bool, sealed) -> None:
    bare, expected = published(sealed)
    dest = sealed.root / "consumer"
    clone(bare, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    git("config", "mlx.thin", str(thin).lower(), cwd=dest)
    mlx("fetch", "-q", cwd=dest)

    def reset(trial: int) -> None:
        (dest / ".git" / "index.lock").unlink(missing_ok=True)
        for path, (sha, size) in expected.items():  # back to pointers, as a skip-smudge checkout left them
            (dest / path).unlink(missing_ok=True)
            (dest / path).write_bytes(pointer_text(sha, size))
        git("update-index", "-q", "--refresh", cwd=dest, check=False)
        if trial % 2 == 0:
            wipe(local_store(dest))  # pull must fetch first

    def after_kill(tally: Tally) -> None:
        check_local(dest, tally, "after kill")
        for path, (sha, size) in expected.items():
            if classify(dest / path, sha, size) == "wrong":
                tally.wrong_bytes.append(f"{path}: {(dest / path).stat().st_size} bytes after the kill")
        leftovers = [p for p in dest.rglob(".*.mlx-*") if p.is_file()]
        tally.tmp_leftovers |= {f"work tree/{p.name}" for p in leftovers}
        for p in leftovers:  # counted, then removed (test_a_killed_pull_leaves_no_temporary_file_in_the_work_tree)
            p.unlink()
        remove_git_lock(dest, tally)

    def after_rerun(tally: Tally, run: Run) -> None:
        check_local(dest, tally, "after rerun")
        for path, (sha, size) in expected.items():
            if classify(dest / path, sha, size) != "content":
                tally.rerun_failures.append(f"{path} not restored by the rerun")
        status = git("status", "--porcelain", cwd=dest).stdout.splitlines()
        # The rerun also refreshes the index entry of a file the killed pull had placed
        # but not yet recorded (test_pull_refreshes_the_index_of_a_file_that_already_holds_its_content).
        if status:
            tally.rerun_failures.append("git status after pull:\n" + "\n".join(status))

    args = ["git", "mlx", "pull", "-q"]
    scenario = Scenario("git mlx pull (place)", dest, args, reset, after_kill, after_rerun)
    run_trials(scenario, trials, sealed).assert_clean()


def test_pull_refreshes_the_index_of_a_file_that_already_holds_its_content(sealed) -> None:
    bare, expected = published(sealed)
    dest = sealed.root / "consumer"
    clone(bare, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    mlx("fetch", "-q", cwd=dest)
    # What a pull killed between placing a.bin and refreshing the index leaves behind.
    shutil.copyfile(
        local_store(dest) / "objects" / expected["a.bin"][0][:2] / expected["a.bin"][0][2:4] / expected["a.bin"][0],
        dest / "a.bin",
    )

    pulled = mlx("pull", cwd=dest)

    assert_no_traceback(pulled)
    assert git("status", "--porcelain", cwd=dest).stdout == ""


def test_a_killed_pull_leaves_no_temporary_file_in_the_work_tree(sealed) -> None:
    bare, expected = published(sealed)
    dest = sealed.root / "consumer"
    clone(bare, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    # What a pull killed while copying a.bin's content leaves beside it.
    (dest / ".a.bin.mlx-0123456789ab").write_bytes(b"\0" * 4096)

    pulled = mlx("pull", cwd=dest)

    assert_no_traceback(pulled)
    assert git("status", "--porcelain", "--untracked-files=all", cwd=dest).stdout == ""


# --- only git dies: its filter process is orphaned mid-file ------------------------------------


def kill_git_alone_mid_clean(sealed) -> tuple[Path, list[str]]:
    """SIGKILL `git add` (not its group) while the filter streams a large file into the
    store; wait for the orphaned filter to finish on its own. Returns (store, crash logs)."""
    repos = make_repo_with_bare_remote(sealed.root)
    with open(repos.work / "big.bin", "wb") as f:
        f.truncate(80 * MIB)  # sparse zeros: quick to make, still 80 MiB to clean
    store = local_store(repos.work)
    proc = subprocess.Popen(["git", "add", "big.bin"], cwd=repos.work, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(store.glob("tmp/obj-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "git add finished before the filter was seen writing"
    os.kill(proc.pid, signal.SIGKILL)  # git only: the filter keeps running, orphaned
    proc.wait()
    wait_group_gone(proc.pid, timeout=60, kill=False)
    return store, take_crash_logs(sealed.tmp)


def test_an_orphaned_filter_leaves_no_partial_object_when_git_is_killed(sealed) -> None:
    store, _ = kill_git_alone_mid_clean(sealed)

    report = check_store(store)
    assert not report.corrupt and not report.objects
    assert not report.tmp_leftovers, "the orphaned filter left its temporary file"


def test_an_orphaned_filter_exits_quietly_when_git_is_killed(sealed) -> None:
    _, logs = kill_git_alone_mid_clean(sealed)

    assert not logs, logs[0]
