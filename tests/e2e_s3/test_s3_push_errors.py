"""Acceptance 4: a push that cannot reach its S3 remote fails cleanly.

Wrong bucket, no credentials, unreachable endpoint: `git push` exits non-zero and the ref
is not updated on the git remote (no commit ever points at content the remote lacks);
`git mlx push` exits 1. Both print a readable `error:` line naming the cause, a `hint:`
naming the fix, and never a Python traceback or the secret.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.commands import Result, assert_no_traceback, git, mlx
from tests.support.content import KIB
from tests.support.repos import Repos, add_commit, remote_ref
from tests.support.s3 import S3Setup, bucket_objects, free_port, make_s3_repo

#: case -> (the error line names the cause with one of, the hint names the fix with one of)
EXPECTED = {
    "wrong-bucket": (("does not exist", "no such bucket"), ("create the bucket", "git mlx remote set")),
    "no-credentials": (("credentials",), ("AWS_ACCESS_KEY_ID", "AWS_PROFILE")),
    "unreachable": (("unreachable", "cannot connect", "could not connect"), ("endpoint-url", "AWS_ENDPOINT_URL")),
}
#: An unreachable endpoint is retried with backoff before the push gives up.
DEADLINE = {"wrong-bucket": 30, "no-credentials": 30, "unreachable": 120}
FILES = {"a.bin": 40 * KIB, "b.bin": 1 * KIB, "sub/c.bin": 3 * KIB, "d.bin": 2 * KIB, "e.bin": 5 * KIB}


def broken_push_setup(case: str, s3: S3Setup, root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Repos, str]:
    """A repo whose remote is broken in the way `case` says, with 5 artifacts committed and
    the ref already on the git remote from an artifact-free first push; returns that ref."""
    url, endpoint = s3.url("team/models"), s3.endpoint
    if case == "wrong-bucket":
        url = f"s3://no-such-bucket-{s3.bucket[-8:]}/team/models"
    elif case == "unreachable":
        endpoint = f"http://127.0.0.1:{free_port()}"
    repos = make_s3_repo(root, url, endpoint)
    git("push", "-q", "origin", "main", cwd=repos.work)  # nothing tracked yet: needs no S3
    before = remote_ref(repos.remote)
    assert before is not None
    add_commit(repos.work, FILES)
    if case == "no-credentials":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    return repos, before


def timed(command, *args, **kwargs) -> tuple[Result, float]:
    started = time.monotonic()
    result = command(*args, **kwargs)
    return result, time.monotonic() - started


def assert_readable_failure(result: Result, case: str, secret: str) -> None:
    """One `error:` line naming the cause (not one per file), a `hint:` naming the fix."""
    causes, fixes = EXPECTED[case]
    assert_no_traceback(result)
    assert secret not in result.output
    lines = result.stderr.splitlines()
    naming = [line for line in lines if line.startswith("error:") and any(c in line.lower() for c in causes)]
    assert naming, f"no error line names the cause ({' / '.join(causes)}):\n{result}"
    assert len(naming) <= 2, f"the cause is repeated for each of the {len(FILES)} files:\n{result}"
    hints = [line for line in lines if line.startswith("hint:")]
    assert any(any(f in line for f in fixes) for line in hints), (
        f"no hint line names the fix ({' / '.join(fixes)}):\n{result}"
    )
    assert all(len(line) < 400 for line in lines), f"unreadably long lines:\n{result}"


@pytest.mark.parametrize(
    "case", ["wrong-bucket", "no-credentials", pytest.param("unreachable", marks=pytest.mark.slow)]
)
def test_push_to_a_broken_s3_remote_fails_readably_and_does_not_move_the_ref(
    case: str, s3: S3Setup, sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    repos, before = broken_push_setup(case, s3, sealed.root, monkeypatch)
    pushed, git_seconds = timed(git, "push", "origin", "main", cwd=repos.work, check=False)
    assert pushed.returncode != 0, f"git push succeeded against a broken remote:\n{pushed}"
    assert remote_ref(repos.remote) == before, "the ref moved although the artifacts were not uploaded"
    assert_readable_failure(pushed, case, s3.secret)

    direct, mlx_seconds = timed(mlx, "push", cwd=repos.work, check=False)
    assert direct.returncode == 1, f"'git mlx push' should exit 1:\n{direct}"
    assert_readable_failure(direct, case, s3.secret)
    assert remote_ref(repos.remote) == before
    assert not bucket_objects(s3.admin, s3.bucket), "something reached the test's bucket"
    assert max(git_seconds, mlx_seconds) < DEADLINE[case], (
        f"failing took {git_seconds:.1f} s (git push), {mlx_seconds:.1f} s (git mlx push)"
    )


def test_push_to_an_unreachable_endpoint_fails_within_10_seconds(
    s3: S3Setup, sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast stand-in for the slow-marked [unreachable] case above."""
    repos, before = broken_push_setup("unreachable", s3, sealed.root, monkeypatch)
    pushed = run_with_deadline(["git", "push", "origin", "main"], repos.work, seconds=10)
    assert pushed is not None, "git push against an unreachable endpoint was still retrying after 10 s"
    assert pushed.returncode != 0
    assert remote_ref(repos.remote) == before
    assert_readable_failure(pushed, "unreachable", s3.secret)


def run_with_deadline(args: list[str], cwd: Path, seconds: float) -> Result | None:
    """Run `args`; None if it is still running after `seconds` (it is then killed, with
    every process it started: git, the pre-push hook, git-mlx)."""
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    return Result(tuple(args), proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
