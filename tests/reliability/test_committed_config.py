"""What a cloned repository's committed `.mlxconfig` can and cannot make gitmlx do
(docs/threat-model.md): which keys are honoured, the rule for a committed S3 endpoint,
and where a committed local-path remote may write.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator

import pytest

from gitmlx.config import trusted_without_asking
from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.faultproxy import FaultProxy
from tests.support.integrity import check_store, take_crash_logs
from tests.support.repos import (
    Repos,
    add_commit,
    assert_content,
    assert_pointer,
    clone,
    commit_all,
    local_store,
    make_repo_with_bare_remote,
    snapshot,
)
from tests.support.s3 import S3Setup, make_s3_repo

KIB = 1024


def loopback_alias() -> str | None:
    """A host name that resolves to 127.0.0.1 (so tests reach their local server) but that
    the endpoint rule does not know for loopback: it stands for any third-party host."""
    for name in (socket.gethostname(), "runsc", "vm", "localhost.localdomain", "ip6-localhost"):
        try:
            if socket.gethostbyname(name) == "127.0.0.1" and not trusted_without_asking(f"http://{name}:1"):
                return name
        except OSError:
            continue
    return None


# --- the committed S3 endpoint -------------------------------------------------------------------


def untrusted_endpoint_repo(s3: S3Setup, sealed, counter: FaultProxy) -> tuple[Repos, str, dict[str, str]]:
    """A published repository whose committed .mlxconfig names `counter` by a host alias."""
    alias = loopback_alias()
    if alias is None:
        pytest.skip("no host name here resolves to 127.0.0.1 except 'localhost'")
    untrusted = f"http://{alias}:{counter.url.rsplit(':', 1)[1]}"
    repos = make_s3_repo(sealed.root, s3.url("team"), untrusted)
    # The repository also claims to trust it: only the user's own git config counts.
    git("config", "--file", ".mlxconfig", "--add", "mlx.trustedendpoint", untrusted, cwd=repos.work)
    shas = add_commit(repos.work, {"a.bin": 200 * KIB, "b.bin": 3 * KIB})
    # The author's own environment names the endpoint (env beats .mlxconfig: no check).
    git("push", "-q", "origin", "main", cwd=repos.work, env={"AWS_ENDPOINT_URL_S3": counter.url})
    return repos, untrusted, shas


def test_a_committed_endpoint_the_user_has_not_trusted_is_refused_until_they_trust_it(s3: S3Setup, sealed) -> None:
    with FaultProxy(s3.host_port) as counter:  # no faults: it counts who talks to the endpoint
        repos, untrusted, shas = untrusted_endpoint_repo(s3, sealed, counter)
        before = counter.stats.requests
        dest = sealed.root / "clone"

        cloned = clone(repos.remote, dest, check=False)

        assert_no_traceback(cloned)
        assert cloned.returncode != 0, "a clone that restored nothing must not succeed"
        assert counter.stats.requests == before, "a signed request reached the untrusted endpoint"
        fix = f"git config --global --add mlx.trustedendpoint {untrusted}"
        assert fix in cloned.stderr, cloned.stderr
        assert ".mlxconfig" in cloned.stderr and "'a.bin'" in cloned.stderr

        trusted = subprocess.run(fix.split(), cwd=dest, capture_output=True, text=True)
        # Redo the checkout git aborted (a no-op when it left pointers), then gitmlx's advice.
        restored = git("reset", "-q", "--hard", cwd=dest, check=False)
        pulled = mlx("pull", cwd=dest, check=False)

        assert trusted.returncode == 0, trusted.stderr
        assert_no_traceback(restored, pulled)
        assert restored.returncode == 0 and pulled.returncode == 0, f"{restored}\n{pulled}"
        assert counter.stats.requests > before
        for path, sha in shas.items():
            assert_content(dest, path, sha)


def test_a_refused_endpoint_leaves_pointers_and_a_complete_checkout(s3: S3Setup, sealed) -> None:
    with FaultProxy(s3.host_port) as counter:
        repos, _, shas = untrusted_endpoint_repo(s3, sealed, counter)
        dest = sealed.root / "clone"

        cloned = clone(repos.remote, dest, check=False)

        assert_no_traceback(cloned)
        assert cloned.returncode != 0 and "git mlx pull" in cloned.stderr
        for path in shas:
            assert_pointer(dest, path)


@pytest.fixture
def tls_listener(sealed, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int, list[bytes]]]:
    """An HTTPS server on 127.0.0.1 with a certificate for a host alias, trusted through
    AWS_CA_BUNDLE: what a third party with a real certificate for its own host looks like.
    Yields (alias, port, request heads received)."""
    alias = loopback_alias()
    if alias is None:
        pytest.skip("no host name here resolves to 127.0.0.1 except 'localhost'")
    key, cert = sealed.root / "key.pem", sealed.root / "cert.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={alias}",
         "-addext", f"subjectAltName=DNS:{alias}", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip(f"cannot make a certificate: {made.stderr.decode()[:200]}")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.create_server(("127.0.0.1", 0))
    heads: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                raw, _ = server.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    conn.settimeout(5)
                    heads.append(conn.recv(65536))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield alias, server.getsockname()[1], heads
    try:
        server.shutdown(socket.SHUT_RDWR)  # wakes accept()
    except OSError:
        pass
    server.close()
    thread.join(timeout=5)


def test_a_committed_endpoint_cannot_pass_for_aws_by_a_url_parsing_trick(
    s3: S3Setup, sealed, tls_listener: tuple[str, int, list[bytes]]
) -> None:
    alias, port, heads = tls_listener
    tricky = f"https://{alias}:{port}\\@s3.amazonaws.com"
    repos = make_repo_with_bare_remote(sealed.root)
    git("config", "--file", ".mlxconfig", "mlx.url", s3.url("team"), cwd=repos.work)
    git("config", "--file", ".mlxconfig", "mlx.s3.endpoint-url", tricky, cwd=repos.work)
    git("config", "--file", ".mlxconfig", "mlx.s3.region", "us-east-1", cwd=repos.work)
    add_commit(repos.work, {"a.bin": 20 * KIB})
    git("push", "-q", "origin", "main", cwd=repos.work, env={"AWS_ENDPOINT_URL_S3": s3.endpoint})
    dest = sealed.root / "clone"

    cloned = clone(repos.remote, dest, check=False)

    assert_no_traceback(cloned)
    signed = [h for h in heads if b"authorization:" in h.lower()]
    assert not signed, f"{alias} received a signed request:\n{signed[0][:400]!r}"
    assert "mlx.trustedendpoint" in cloned.stderr


# --- keys a repository cannot set --------------------------------------------------------------


def test_a_committed_cache_skipsmudge_or_include_is_not_honoured(repos: Repos, sealed) -> None:
    elsewhere = sealed.root / "chosen-by-the-repo"
    elsewhere.mkdir()
    other_remote = sealed.root / "included-remote"
    included = sealed.root / "included.cfg"
    included.write_text(f"[mlx]\n\turl = {other_remote}\n")
    shas = add_commit(repos.work, {"a.bin": 100 * KIB})
    git("push", "-q", "origin", "main", cwd=repos.work)
    (repos.work / ".mlxconfig").write_text(
        f"[include]\n\tpath = {included}\n[mlx]\n\tcache = {elsewhere}\n\tskipsmudge = true\n"
    )
    commit_all(repos.work, "hostile .mlxconfig")
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"

    cloned = clone(repos.remote, dest)
    env = mlx("env", cwd=dest)

    assert_no_traceback(cloned, env)
    assert_content(dest, "a.bin", shas["a.bin"])  # smudged: skipsmudge ignored
    assert not any(elsewhere.iterdir()), "the repository chose where objects are stored"
    assert shas["a.bin"] in check_store(local_store(dest)).objects
    assert not other_remote.exists()
    assert str(elsewhere) not in env.stdout and str(other_remote) not in env.stdout
    assert "mlx.skipsmudge=false\t[default]" in env.stdout


def test_a_committed_mlxconfig_symlink_is_not_followed_out_of_the_repository(repos: Repos, sealed) -> None:
    outside = sealed.root / "outside.cfg"
    outside.write_text(f"[mlx]\n\turl = {sealed.root / 'read-from-outside'}\n")
    os.symlink(outside, repos.work / ".mlxconfig")
    commit_all(repos.work, "symlinked .mlxconfig")

    shown = mlx("env", cwd=repos.work)

    assert_no_traceback(shown)
    assert "read-from-outside" not in shown.stdout, shown.stdout

    # Nor is a symlink's blob (its target's name) read as settings from the index or
    # HEAD when the work tree has no .mlxconfig (a clone's checkout, before it is written).
    (repos.work / ".mlxconfig").unlink()
    os.symlink("[mlx] url = link-text-as-config", repos.work / ".mlxconfig")
    commit_all(repos.work, "a symlink whose target's name parses as config")
    (repos.work / ".mlxconfig").unlink()

    shown = mlx("env", cwd=repos.work)

    assert_no_traceback(shown)
    assert "link-text-as-config" not in shown.stdout, shown.stdout


def test_a_malformed_committed_mlxconfig_fails_the_checkout_naming_the_file_and_the_fix(repos: Repos, sealed) -> None:
    add_commit(repos.work, {"a.bin": 50 * KIB})
    blob = git("hash-object", "-w", "--stdin", cwd=repos.work, input=b"[mlx\n\turl = nowhere\n").stdout.strip()
    git("update-index", "--add", "--cacheinfo", f"100644,{blob},.mlxconfig", cwd=repos.work)
    git("commit", "-q", "-m", "broken .mlxconfig", cwd=repos.work)
    git("push", "-q", "--no-verify", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"

    cloned = clone(repos.remote, dest, check=False)

    assert_no_traceback(cloned)
    assert not take_crash_logs(sealed.tmp)
    assert cloned.returncode != 0
    assert ".mlxconfig" in cloned.stderr and "fix the file's syntax" in cloned.stderr, cloned.stderr
    if (dest / "a.bin").exists():  # whatever git wrote is the pointer or the content, nothing else
        data = (dest / "a.bin").read_bytes()
        assert data == (repos.work / "a.bin").read_bytes() or data.startswith(b"version https://gitmlx.dev/")


# --- a committed local-path remote -----------------------------------------------------------------

ALLOWED_KEYS = re.compile(
    r"mlx-remote\.json|manifests/[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}|shards/[0-9a-f]{64}\.shard"
    r"|packs/[0-9a-f]{2}/[0-9a-f]{64}\.pack"
    r"|gc/(pending|keep|deleting)-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}\.json"
)


def test_a_committed_local_path_remote_gets_only_gitmlx_content_addressed_keys(repos: Repos, sealed) -> None:
    """Accepted risk (docs/threat-model.md): a repository may name a directory as its
    remote. A push then writes there, but only the format marker, manifests and packs
    under their content-addressed names (and tmp/ while writing); existing files stay."""
    victim = sealed.root / "victim"
    (victim / "manifests").mkdir(parents=True)
    (victim / "notes.txt").write_text("mine\n")
    (victim / "manifests" / "README").write_text("also mine\n")
    git("config", "--file", ".mlxconfig", "mlx.url", str(victim), cwd=repos.work)
    add_commit(repos.work, {"a.bin": 300 * KIB, "sub/b.bin": 5 * KIB, "empty.bin": 0})
    before = {p.relative_to(victim).as_posix() for p in victim.rglob("*") if p.is_file()}
    outside = snapshot(sealed.root)

    pushed = git("push", "origin", "main", cwd=repos.work)

    assert_no_traceback(pushed)
    written = {p.relative_to(victim).as_posix() for p in victim.rglob("*") if p.is_file()} - before
    assert written, "nothing was pushed to the committed remote"
    assert all(ALLOWED_KEYS.fullmatch(key) for key in written), sorted(written)
    assert (victim / "notes.txt").read_text() == "mine\n"
    assert (victim / "manifests" / "README").read_text() == "also mine\n"
    allowed = (victim, repos.work, repos.remote)  # the git remote gets the git push, of course
    stray = [p for p in snapshot(sealed.root) - outside if not any(p.is_relative_to(a) for a in allowed)]
    assert not stray, stray
