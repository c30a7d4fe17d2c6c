"""Guarantees 4 and 6 against a misbehaving remote: S3 (moto) behind a proxy that answers
500 and 503 SlowDown, resets connections mid-body, ends bodies early, lies about
Content-Length, or flips bytes in flight; objects damaged at rest (overwritten through
boto3); a directory remote that lost its packs. Each fault is retried, detected or
reported, and never reaches the work tree.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import remote_layout
from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import write_random
from tests.support.formats import decode_manifest
from tests.support.http_faults import MODES, RECOVERABLE, HttpFaultProxy
from tests.support.integrity import check_remote_dir, check_remote_s3, check_store, classify, take_crash_logs
from tests.support.repos import assert_content, clone, commit_all, local_store, make_repo_with_bare_remote
from tests.support.s3 import S3Setup, make_s3_repo
from tests.support.trials import Tally

KIB = 1024
SIZES = {"a.bin": 1536 * KIB, "b.bin": 600 * KIB, "c.bin": 20 * KIB}


@pytest.fixture
def proxy(s3: S3Setup) -> Iterator[HttpFaultProxy]:
    with HttpFaultProxy(s3.host_port, seed=6) as faulty:
        yield faulty


def publish_s3(s3: S3Setup, sealed, endpoint: str, prefix: str = "faults") -> tuple[object, dict[str, str]]:
    repos = make_s3_repo(sealed.root, s3.url(prefix), endpoint)
    shas = {path: write_random(repos.work / path, size, path) for path, size in SIZES.items()}
    commit_all(repos.work, "artifacts")
    git("push", "-q", "origin", "main", cwd=repos.work)
    return repos, shas


def judge(tally: Tally, dest, shas: dict[str, str], result, recoverable: bool, label: str) -> list[str]:
    """Record what a clone or pull left; returns the paths left as pointers."""
    tally.tracebacks += [result.stderr[:2000]] if "Traceback" in result.output else []
    left = []
    for path, sha in shas.items():
        state = classify(dest / path, sha, SIZES[path])
        if state == "wrong":
            tally.wrong_bytes.append(f"{label}: {path}")
        elif state != "content":
            left.append(path)
            tally.detected += 1
            if f"'{path}'" not in result.stderr:
                tally.rerun_failures.append(f"{label}: {path} left as {state} without a message naming it")
    if recoverable and (left or result.returncode != 0):
        tally.rerun_failures.append(f"{label}: not recovered ({left}, exit {result.returncode})\n{result.stderr}")
    if left and result.returncode == 0:
        tally.rerun_failures.append(f"{label}: files left as pointers but exit 0")
    report = check_store(local_store(dest))
    tally.corrupt += [f"{label}: {c}" for c in report.corrupt]
    return left


@pytest.mark.parametrize("rounds", [pytest.param(1, id="ci"), pytest.param(5, id="full", marks=pytest.mark.slow)])
def test_downloads_through_each_fault_are_retried_or_refused_and_never_written(
    rounds: int, s3: S3Setup, sealed, proxy: HttpFaultProxy
) -> None:
    _, shas = publish_s3(s3, sealed, proxy.url)
    repos_remote = sealed.root / "remote.git"
    tallies = {mode: Tally(f"S3 download fault: {mode}") for mode in MODES}
    for n in range(rounds):
        for mode in MODES:
            tally = tallies[mode]
            tally.trials += 1
            before = proxy.injected[mode]
            proxy.set_fault(mode)  # the first request for each object meets the fault
            dest = sealed.root / f"clone-{mode}-{n}"
            cloned = clone(repos_remote, dest, check=False)
            proxy.set_fault(None)
            tally.injected += proxy.injected[mode] - before
            left = judge(tally, dest, shas, cloned, mode in RECOVERABLE, f"{mode} round {n}")
            if left:  # detected: once the network is fine, the repository is usable as is
                pulled = mlx("pull", cwd=dest, check=False)
                judge(tally, dest, shas, pulled, True, f"{mode} round {n}, pull afterwards")
            tally.tracebacks += take_crash_logs(sealed.tmp)
    for mode, tally in tallies.items():
        assert tally.injected > 0, f"the proxy never injected '{mode}'"
        tally.assert_clean()


PUSH_FAULTS = [
    pytest.param([("500", "503", "reset")], id="ci"),
    pytest.param([("500",), ("503",), ("reset",)] * 4, id="full", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("rounds", PUSH_FAULTS)
def test_push_through_500s_503s_and_resets_completes_intact(
    rounds: list[tuple[str, ...]], s3: S3Setup, sealed, proxy: HttpFaultProxy
) -> None:
    repos = make_s3_repo(sealed.root, s3.url("push"), proxy.url)
    shas = {path: write_random(repos.work / path, size, path) for path, size in SIZES.items()}
    commit_all(repos.work, "artifacts")
    tally = Tally("S3 push through 500 / 503 / reset")
    methods = ("GET", "HEAD", "PUT", "POST")
    for modes in rounds:
        tally.trials += 1
        # Start from nothing: no ref on the git remote, no object in the bucket, no memory of either.
        git("update-ref", "-d", "refs/remotes/origin/main", cwd=repos.work, check=False)
        git("update-ref", "-d", "refs/heads/main", cwd=repos.remote, check=False)
        for key in [o["Key"] for o in s3.admin.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]:
            s3.admin.delete_object(Bucket=s3.bucket, Key=key)
        (local_store(repos.work) / "index.sqlite").unlink(missing_ok=True)
        before = sum(proxy.injected.values())
        proxy.set_fault(modes, fraction=0.3, methods=methods)
        pushed = git("push", "-q", "origin", "main", cwd=repos.work, check=False)
        proxy.set_fault(None)
        tally.injected += sum(proxy.injected.values()) - before
        assert_no_traceback(pushed)
        if pushed.returncode != 0:
            tally.rerun_failures.append(f"{modes}: push failed\n{pushed.stderr}")
        report = check_remote_s3(s3.admin, s3.bucket, "push")
        tally.corrupt += [f"{modes}: {p}" for p in report.problems]
        if set(report.objects) != set(shas.values()):
            tally.rerun_failures.append(f"{modes}: remote holds {len(report.objects)} of {len(shas)} objects")
    tally.tracebacks += take_crash_logs(sealed.tmp)
    assert tally.injected > 0, "the proxy injected nothing"
    tally.assert_clean()


def overwrite(s3: S3Setup, key: str, data: bytes) -> None:
    s3.admin.put_object(Bucket=s3.bucket, Key=key, Body=data)


def test_objects_damaged_at_rest_on_s3_are_refused_and_named(s3: S3Setup, sealed) -> None:
    repos = make_s3_repo(sealed.root, s3.url("rest"), s3.endpoint)
    shas = {}
    for path, size in SIZES.items():  # one push each: one pack each
        shas[path] = write_random(repos.work / path, size, path)
        commit_all(repos.work, path)
        git("push", "-q", "origin", "main", cwd=repos.work)

    def manifest(oid: str) -> list:
        return decode_manifest(remote_layout.s3_manifest_bytes(s3.admin, s3.bucket, "rest", oid), oid)[1]

    first = manifest(shas["b.bin"])[0]  # b.bin: same length, bytes flipped inside its first chunk
    key = f"rest/packs/{first.pack[:2]}/{first.pack}.pack"
    pack = bytearray(s3.admin.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    for i in range(first.offset, first.offset + 32):
        pack[i] ^= 0xFF
    overwrite(s3, key, bytes(pack))
    last = manifest(shas["c.bin"])[-1]  # c.bin: its pack cut short
    key = f"rest/packs/{last.pack[:2]}/{last.pack}.pack"
    overwrite(s3, key, s3.admin.get_object(Bucket=s3.bucket, Key=key)["Body"].read()[: last.offset + 1])
    dest = sealed.root / "clone"

    cloned = clone(repos.remote, dest, check=False)
    checked = mlx("fsck", "--remote", "--full", cwd=dest, check=False)

    assert_no_traceback(cloned, checked)
    assert not take_crash_logs(sealed.tmp)
    assert cloned.returncode != 0
    assert_content(dest, "a.bin", shas["a.bin"])
    for path in ("b.bin", "c.bin"):
        assert classify(dest / path, shas[path], SIZES[path]) == "pointer", path
        assert f"'{path}'" in cloned.stderr
    assert "git mlx pull" in cloned.stderr
    assert not check_store(local_store(dest)).corrupt
    if checked.returncode != 2:  # `git mlx fsck --remote --full` exists: it names both files
        assert checked.returncode == 1 and "'b.bin'" in checked.stderr and "'c.bin'" in checked.stderr, str(checked)


def test_a_push_after_the_remote_lost_its_packs_uploads_them_again(sealed) -> None:
    """The local chunk index still lists the chunks of packs the remote lost (wiped,
    restored from a backup, or collected): the push finds each such pack missing, forgets
    it, and uploads its chunks again, in the same push."""
    repos = make_repo_with_bare_remote(sealed.root)
    sha = write_random(repos.work / "a.bin", 400 * KIB, "a")
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    for pack in (repos.remote / "mlx" / "packs").rglob("*.pack"):
        pack.chmod(0o644)
        pack.unlink()
    for manifest in (repos.remote / "mlx" / "manifests").rglob("*"):
        if manifest.is_file():
            manifest.unlink()

    first = mlx("push", "--all", cwd=repos.work, check=False)
    again = mlx("push", "--all", cwd=repos.work, check=False)

    assert_no_traceback(first, again)
    assert first.returncode == 0 and again.returncode == 0, f"{first}\n{again}"
    report = check_remote_dir(repos.remote / "mlx")
    assert report.ok and sha in report.objects, report.problems
