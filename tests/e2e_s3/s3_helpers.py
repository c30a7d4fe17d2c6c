"""Helpers for the S3 end-to-end tests: what tests/e2e/helpers.py does not cover.

Owns: publishing a repository whose committed `.mlxconfig` points at an S3 remote,
listing a bucket as a user with boto3 would, a fault proxy that also cuts request bodies
(uploads), a `git-mlx` shim that records each invocation's peak RSS, and a scan of files
and outputs for a secret.
Must not: import gitmlx (the remote layout is looked at only as "keys under the prefix"),
or reach anything but 127.0.0.1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_E2E = Path(__file__).resolve().parent.parent / "e2e"
if str(_E2E) not in sys.path:
    sys.path.insert(0, str(_E2E))  # tests/e2e/helpers.py, which tests/e2e/conftest.py imports too

from faultproxy import FaultProxy, _content_length, _pump, _read_exactly, _read_head, _with_close  # noqa: E402
from helpers import Repos, commit_all, git, make_repo_with_bare_remote, mlx, write_random  # noqa: E402


def _load_e2e_conftest():
    """tests/e2e/conftest.py as a module of its own name (pytest may hold another 'conftest')."""
    spec = importlib.util.spec_from_file_location("gitmlx_e2e_conftest", _E2E / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


e2e_conftest = _load_e2e_conftest()
BIN_DIR: Path = e2e_conftest.BIN_DIR
sealed_env = e2e_conftest._sealed_env  # (home, tmp, ceiling) -> the sealed environment

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


# --- AWS variables ---------------------------------------------------------------------

REGION = "us-east-1"
ACCESS_KEY_ID = "AKIAGITMLXE2ETESTING"

#: Variables that could point boto3 at something other than the test's moto server.
AWS_LEAKS = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
)


def aws_variables(secret: str) -> dict[str, str]:
    """What a CI job puts in the environment for S3: credentials and a region, nothing else."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",  # no wait for an instance role that is not there
        "NO_PROXY": "127.0.0.1,localhost",
    }


@dataclass(frozen=True)
class S3Setup:
    endpoint: str  # http://127.0.0.1:PORT of moto
    bucket: str  # a fresh bucket for this test
    admin: object  # a plain boto3 client on moto, to look behind gitmlx's back
    secret: str  # the AWS_SECRET_ACCESS_KEY in the environment, unique to this test
    env: dict[str, str]  # the AWS variables set

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.endpoint.removeprefix("http://").rsplit(":", 1)
        return host, int(port)

    def url(self, prefix: str = "team/models") -> str:
        return f"s3://{self.bucket}/{prefix}"


# --- repositories on S3 ----------------------------------------------------------------


def make_s3_repo(root: Path, url: str, endpoint: str, name: str = "work") -> Repos:
    """`make_repo_with_bare_remote` plus `git mlx remote set URL --endpoint-url E`, committed."""
    repos = make_repo_with_bare_remote(root, name=name)
    mlx("remote", "set", url, "--endpoint-url", endpoint, cwd=repos.work)
    text = (repos.work / ".mlxconfig").read_text()
    assert url in text and endpoint in text, f".mlxconfig does not hold the remote:\n{text}"
    git("add", ".mlxconfig", cwd=repos.work)
    git("commit", "-q", "-m", "artifact remote on S3", cwd=repos.work)
    return repos


def write_artifacts(repo: Path, sizes: dict[str, int], seed: str = "") -> dict[str, str]:
    """Write one pseudo-random file per path; returns path -> sha256."""
    return {path: write_random(repo / path, size, f"{seed}{path}") for path, size in sizes.items()}


def add_commit(repo: Path, sizes: dict[str, int], seed: str = "", message: str = "artifacts") -> dict[str, str]:
    shas = write_artifacts(repo, sizes, seed)
    commit_all(repo, message)
    return shas


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the bucket as boto3 sees it -------------------------------------------------------


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str

    @property
    def multipart(self) -> bool:
        """S3 gives an object completed from N parts the ETag `"<md5 of md5s>-N"`."""
        return "-" in self.etag.strip('"')


def bucket_objects(client: object, bucket: str) -> list[S3Object]:
    """Every object in the bucket, whatever its key."""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found.append(S3Object(obj["Key"], int(obj["Size"]), obj["ETag"]))
    return found


def open_multipart_uploads(client: object, bucket: str) -> list[str]:
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def assert_all_under_prefix(objects: Iterable[S3Object], prefix: str) -> None:
    objects = list(objects)
    assert objects, "the bucket is empty: nothing was pushed"
    stray = [o.key for o in objects if not o.key.startswith(prefix.rstrip("/") + "/")]
    assert not stray, f"objects outside '{prefix}/': {stray[:10]}"


# --- faults: a proxy that also cuts uploads --------------------------------------------


class DroppingProxy(FaultProxy):
    """`FaultProxy`, except that a request drawn to be cut that carries a body (a PUT of an
    object or part) is cut in the middle of that *request* body: half of it reaches the
    server, then both connections drop. `FaultProxy` alone can only cut response bodies,
    and an upload's response has none, so a push would never see a dropped connection."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.upload_cuts = 0

    def _serve(self, client: socket.socket) -> None:  # noqa: C901 - FaultProxy._serve + one branch
        upstream: socket.socket | None = None
        try:
            reader = client.makefile("rb")
            head = _read_head(reader)
            if head is None:
                return
            method = head[0].split(b" ", 1)[0]
            fault, cut_at = self._draw()
            if fault == "slowdown":
                self._answer_slowdown(client, reader, method)
                return
            upstream = socket.create_connection(self.upstream)
            if not self._track(upstream):
                return
            upstream.sendall(_with_close(head))
            body_length = _content_length(head) or 0
            if fault == "cut" and body_length > 1:
                with self._lock:
                    self.stats.cuts += 1
                    self.upload_cuts += 1
                self._spawn(_pump_some_then_drop, reader, upstream, client, body_length // 2)
            else:
                self._spawn(_pump, reader, upstream)
            up_reader = upstream.makefile("rb")
            while True:
                response = _read_head(up_reader)
                if response is None:
                    return
                status = int(response[0].split(b" ")[1])
                if status >= 200:
                    break
                client.sendall(b"".join(response))  # 100 Continue: pass it on as-is
            if fault == "cut" and body_length > 1:
                return  # the server answered before the whole body came: drop it anyway
            client.sendall(_with_close(response))
            length = _content_length(response)
            has_body = method != b"HEAD" and status not in (204, 304)
            keep = max(int(length * cut_at), 1 if cut_at else 0) if length else 0
            if fault == "cut" and has_body and length and keep < length:
                with self._lock:
                    self.stats.cuts += 1
                client.sendall(_read_exactly(up_reader, keep))
                return
            _pump(up_reader, client)
            with self._lock:
                self.stats.forwarded += 1
        except OSError:
            pass
        finally:
            if upstream is not None:
                self._release(upstream)
            self._release(client)


def _pump_some_then_drop(reader, upstream: socket.socket, client: socket.socket, limit: int) -> None:
    """Forward `limit` bytes of the request body, then shut both connections down."""
    try:
        left = limit
        while left > 0:
            data = reader.read1(min(left, 65536))
            if not data:
                break
            upstream.sendall(data)
            left -= len(data)
    except OSError:
        pass
    finally:
        for sock in (client, upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# --- peak memory of every git-mlx process ----------------------------------------------

_SHIM = """\
#!{python}
# Runs the real git-mlx as a child and records its peak RSS (KiB) in a report file.
import json, os, resource, subprocess, sys
status = subprocess.call([{real!r}, *sys.argv[1:]])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
if sys.platform == "darwin":
    peak //= 1024
with open(os.path.join({reports!r}, "%d.json" % os.getpid()), "w") as f:
    json.dump({{"argv": sys.argv[1:], "peak_kib": peak, "status": status}}, f)
sys.exit(status)
"""


def install_rss_shim(shim_dir: Path, real_git_mlx: Path, reports: Path) -> Path:
    """A `git-mlx` in `shim_dir` (put it first on PATH) that measures the real one.

    git starts `git-mlx` for the filter (`filter.mlx.process = git-mlx filter-process`) and,
    through `git mlx pre-push`, for the hook; both resolve through PATH to the shim."""
    shim_dir.mkdir(parents=True, exist_ok=True)
    reports.mkdir(parents=True, exist_ok=True)
    shim = shim_dir / "git-mlx"
    shim.write_text(_SHIM.format(python=sys.executable, real=str(real_git_mlx), reports=str(reports)))
    shim.chmod(0o755)
    return shim


def rss_reports(reports: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(reports.glob("*.json"))]


# --- secrets ---------------------------------------------------------------------------


def files_containing(secret: bytes, roots: Iterable[Path]) -> list[Path]:
    """Every regular file under `roots` whose bytes contain `secret` (read in blocks)."""
    hits = []
    overlap = len(secret) - 1
    for root in roots:
        if not root.exists():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                if _file_contains(path, secret, overlap):
                    hits.append(path)
    return hits


def _file_contains(path: Path, secret: bytes, overlap: int) -> bool:
    tail = b""
    try:
        with open(path, "rb") as f:
            while block := f.read(4 * MIB):
                if secret in tail + block:
                    return True
                tail = block[-overlap:] if overlap else b""
    except OSError:
        return False
    return False
