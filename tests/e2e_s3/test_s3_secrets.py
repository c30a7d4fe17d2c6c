"""Acceptance 5: the secret access key appears in no output, log or file.

A full push / clone run on S3 with a unique AWS_SECRET_ACCESS_KEY: every command a user or
CI would run (including `git mlx env`, a failing push, and a clone under GIT_TRACE, which
shows every command line git starts), then every stdout and stderr, every file under the
repositories, HOME and TMPDIR, and gitmlx's crash-log folders are searched for it.
"""

from __future__ import annotations

from gitmlx.ui import crash_log_dir
from tests.support.commands import Result, git, mlx
from tests.support.content import KIB, MIB, write_random
from tests.support.probes import files_containing
from tests.support.repos import add_commit, assert_content, clone, commit_all
from tests.support.s3 import S3Setup, make_s3_repo


def test_the_secret_access_key_is_never_printed_logged_or_written(s3: S3Setup, sealed) -> None:
    outputs: list[Result] = []

    def keep(result: Result) -> Result:
        outputs.append(result)
        return result

    url = s3.url("team/models")
    repos = make_s3_repo(sealed.root, url, s3.endpoint)
    shas = add_commit(repos.work, {"model.bin": 3 * MIB, "cfg/a.bin": 10 * KIB, "empty.bin": 0})
    for args in (("env",), ("remote",)):
        keep(mlx(*args, cwd=repos.work))
    keep(git("push", "origin", "main", cwd=repos.work))
    keep(mlx("status", cwd=repos.work))

    trace = sealed.tmp / "git-trace.log"
    dest = sealed.root / "clone"
    keep(clone(repos.remote, dest, env={"GIT_TRACE": str(trace), "GIT_TRACE_PACKET": str(trace)}))
    assert trace.stat().st_size > 0
    for path, sha in shas.items():
        assert_content(dest, path, sha)
    for args in (("env",), ("fetch", "--all")):
        keep(mlx(*args, cwd=dest))

    # A round trip the other way, then a push that fails (errors must be scrubbed too).
    write_random(dest / "new.bin", 200 * KIB, "new")
    commit_all(dest, "from the clone")
    keep(git("push", "origin", "main", cwd=dest))
    keep(git("pull", "-q", "origin", "main", cwd=repos.work))
    keep(mlx("remote", "set", f"s3://no-such-bucket-{s3.bucket[-6:]}/x", cwd=repos.work))
    write_random(repos.work / "more.bin", 5 * KIB, "more")
    commit_all(repos.work, "to a bucket that is not there")
    failed = keep(git("push", "origin", "main", cwd=repos.work, check=False))
    assert failed.returncode != 0

    leaked = [str(r) for r in outputs if s3.secret in r.output]
    assert not leaked, "the secret access key was printed:\n" + "\n\n".join(leaked)
    roots = [sealed.root, crash_log_dir()]  # crash logs: the sealed state folder is under root
    written = files_containing(s3.secret.encode(), roots)
    assert not written, f"the secret access key was written to: {written}"
    # The scan works: the secret is found where we put it ourselves.
    (sealed.tmp / "canary").write_text(f"x{s3.secret}y")
    assert files_containing(s3.secret.encode(), [sealed.root]) == [sealed.tmp / "canary"]
