#!/usr/bin/env python3
"""gitmlx push / pull throughput on S3 against a plain boto3 loop, in the same run.

    python bench/s3_throughput.py                      # 1 GiB in 64 files, moto on loopback
    python bench/s3_throughput.py --rounds 3 --concurrency 8
    python bench/s3_throughput.py --endpoint http://127.0.0.1:9000 --bucket-prefix bench
        # any S3-compatible store (MinIO, ...): credentials from the usual AWS_* variables

The same files go up and come back down twice per round:

* gitmlx: `git push` (its pre-push hook runs `git mlx pre-push`) from a repository whose
  committed `.mlxconfig` names the S3 remote and sets `mlx.concurrency`; then, in a
  clone made with GIT_MLX_SKIP_SMUDGE=1, `git mlx fetch` (into the local store), in a
  second such clone, `git mlx pull` (fetch + write the work tree), and in a third with
  `mlx.thin` set, `git mlx pull` again (the work tree is the only copy: bytes written once);
* baseline: a ThreadPoolExecutor with as many workers as `mlx.concurrency`, mapping boto3's
  `upload_file` / `download_file` (its default TransferConfig) over the files.

After both, boto3 reads every object gitmlx stored in 16 MiB ranged GETs into memory: the
server's ceiling for gitmlx's access pattern (reported, not a target). Which side goes
first alternates between rounds. By default the S3 endpoint is moto's
server (`moto[server]`) in its own process on 127.0.0.1 (so neither side shares a Python
interpreter, or its GIL, with the server). gitmlx runs as a user runs it: the real `git` and
`git-mlx`, under a sealed HOME whose only git config is what `git mlx install` wrote.

Prints a table and the gitmlx / boto3 throughput ratios against their targets (push 0.8,
fetch 1.0, thin pull 0.8; the two-copy pull is reported without one); `--json PATH` writes
the raw numbers. Exit status 0, or 1 with `--check` when a ratio misses its target.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

MIB = 1024 * 1024
#: gitmlx / boto3 throughput each ratio must reach. A pull that keeps a store copy writes
#: every byte twice where `download_file` writes it once: reported, with no target.
TARGETS = {"push / upload_file": 0.8, "fetch / download_file": 1.0, "thin pull / download_file": 0.8}
REGION = "us-east-1"
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


# --- the S3 endpoint -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoProcess:
    """`python -m moto.server` on 127.0.0.1, in its own process, for the bench's lifetime."""

    def __init__(self, workdir: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        tmp = workdir / "moto-tmp"  # moto spools object bodies to temporary files
        tmp.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["TMPDIR"] = str(tmp)
        self.log = open(workdir / "moto.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"moto server exited at start; see {workdir / 'moto.log'}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit("moto server did not start within 30 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def make_client(endpoint: str, concurrency: int):
    import boto3
    from botocore.config import Config

    # What gitmlx sets for a non-AWS endpoint too: checksums only where required (the
    # default CRC trailers cost CPU and some S3-compatible stores refuse them).
    config = Config(
        max_pool_connections=max(10, concurrency * 10),
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard"},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION, config=config)


def empty_and_delete(client, bucket: str) -> None:
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=bucket)


# --- the sealed environment gitmlx runs in ---------------------------------------------


def real_git_mlx() -> Path:
    """The console script next to this interpreter (not a pyenv shim: a shim costs a bash
    and a pyenv start for every call)."""
    script = Path(sys.executable).parent / "git-mlx"
    if not script.exists():
        found = shutil.which("git-mlx")
        if not found:
            raise SystemExit("git-mlx is not installed (pip install -e .)")
        script = Path(found)
    return script


def sealed_env(root: Path, aws: dict[str, str]) -> dict[str, str]:
    home, tmp = root / "home", root / "tmp"
    home.mkdir()
    tmp.mkdir()
    keep = ("PYTHONPATH", "LANG", "TERM", "VIRTUAL_ENV")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        {
            "HOME": str(home),
            "TMPDIR": str(tmp),
            "PATH": f"{real_git_mlx().parent}{os.pathsep}{SYSTEM_PATH}",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
            "GIT_CEILING_DIRECTORIES": str(root),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.invalid",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.invalid",
            "LC_ALL": "C.UTF-8",
            "NO_PROXY": "127.0.0.1,localhost",
            **aws,
        }
    )
    sh(["git", "config", "--global", "init.defaultBranch", "main"], home, env)
    sh(["git", "mlx", "install"], home, env)
    return env


def sh(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Run a command (failing loudly); return its wall time in seconds."""
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(
            f"$ {' '.join(args)}  (in {cwd})\nexit {proc.returncode}\n"
            f"{proc.stdout.decode(errors='replace')}{proc.stderr.decode(errors='replace')}"
        )
    return seconds


# --- one round -------------------------------------------------------------------------


@dataclass
class Round:
    index: int
    first: str
    mlx_push: float
    mlx_fetch: float
    mlx_pull: float
    mlx_thin_pull: float
    boto_upload: float
    boto_download: float
    ranged_ceiling: float  # boto3 reading gitmlx's bucket in 16 MiB ranges, into memory
    boto_download_process: float  # the download_file loop as a command: a new Python process


def write_inputs(folder: Path, files: int, size: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(files):
        path = folder / f"shard-{i:03d}.bin"
        with open(path, "wb") as f:
            left = size
            while left:
                block = os.urandom(min(left, 8 * MIB))
                f.write(block)
                left -= len(block)
        paths.append(path)
    return paths


def run_gitmlx(
    root: Path, env: dict[str, str], inputs: list[Path], url: str, endpoint: str, concurrency: int
) -> tuple[float, float, float, float]:
    bare, work = root / "remote.git", root / "work"
    sh(["git", "init", "-q", "--bare", str(bare)], root, env)
    sh(["git", "init", "-q", str(work)], root, env)
    sh(["git", "remote", "add", "origin", str(bare)], work, env)
    sh(["git", "mlx", "install"], work, env)
    sh(["git", "mlx", "track", "*.bin"], work, env)
    sh(["git", "mlx", "remote", "set", url, "--endpoint-url", endpoint], work, env)
    sh(["git", "config", "-f", ".mlxconfig", "mlx.concurrency", str(concurrency)], work, env)
    for path in inputs:
        shutil.copyfile(path, work / path.name)
    sh(["git", "add", "-A"], work, env)  # clean filter: hashes into the local store (not timed)
    sh(["git", "commit", "-q", "-m", "inputs"], work, env)
    os.sync()  # before each timed step: no step pays for the dirty pages of the one before
    push = sh(["git", "push", "-q", "origin", "main"], work, env)  # the pre-push hook uploads

    lazy = {**env, "GIT_MLX_SKIP_SMUDGE": "1"}
    for name in ("fetch-clone", "pull-clone", "thin-clone"):
        sh(["git", "clone", "-q", str(bare), str(root / name)], root, lazy)
    sh(["git", "config", "mlx.thin", "true"], root / "thin-clone", env)
    os.sync()
    fetch = sh(["git", "mlx", "fetch", "-q"], root / "fetch-clone", env)
    os.sync()
    pull = sh(["git", "mlx", "pull", "-q"], root / "pull-clone", env)
    os.sync()
    thin_pull = sh(["git", "mlx", "pull", "-q"], root / "thin-clone", env)
    for clone in ("pull-clone", "thin-clone"):
        for path in inputs[:: max(1, len(inputs) // 8)]:  # spot-check the restored bytes
            if (root / clone / path.name).read_bytes() != path.read_bytes():
                raise SystemExit(f"gitmlx pull ({clone}) restored wrong bytes for {path.name}")
    return push, fetch, pull, thin_pull


def read_bucket_by_ranges(client, bucket: str, concurrency: int, span: int = 16 * MIB) -> tuple[float, int]:
    """Every object of `bucket` read in `span`-byte ranged GETs, `concurrency` at a time,
    into memory: what this server gives a client that reads what gitmlx stored the way
    gitmlx reads it (by range), with no hashing and no disk. Returns (seconds, bytes)."""
    ranges = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            ranges += [(obj["Key"], start, min(obj["Size"], start + span)) for start in range(0, obj["Size"], span)]

    def read(item: tuple[str, int, int]) -> int:
        key, start, end = item
        body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
        return sum(len(block) for block in iter(lambda: body.read(MIB), b""))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        started = time.perf_counter()
        total = sum(pool.map(read, ranges))
        return time.perf_counter() - started, total


def run_boto3(client, bucket: str, inputs: list[Path], out: Path, concurrency: int) -> tuple[float, float]:
    """The baseline: the same files through upload_file / download_file, `concurrency` at a time."""
    out.mkdir()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        os.sync()  # as before each of gitmlx's steps
        started = time.perf_counter()
        list(pool.map(lambda p: client.upload_file(str(p), bucket, f"base/{p.name}"), inputs))
        upload = time.perf_counter() - started
        os.sync()
        started = time.perf_counter()
        list(pool.map(lambda p: client.download_file(bucket, f"base/{p.name}", str(out / p.name)), inputs))
        download = time.perf_counter() - started
    for path in inputs[:: max(1, len(inputs) // 8)]:
        if (out / path.name).read_bytes() != path.read_bytes():
            raise SystemExit(f"boto3 download_file returned wrong bytes for {path.name}")
    return upload, download


#: The download_file loop of `run_boto3`, run as its own process: it pays what a command
#: pays (starting Python, importing boto3, making a client) and `git mlx fetch` pays too.
PROCESS_DOWNLOAD = """
import os, sys
from concurrent.futures import ThreadPoolExecutor
sys.path.insert(0, os.environ["BENCH_DIR"])
from s3_throughput import make_client
endpoint, bucket, out, concurrency, *names = sys.argv[1:]
client = make_client(endpoint, int(concurrency))
with ThreadPoolExecutor(int(concurrency)) as pool:
    list(pool.map(lambda n: client.download_file(bucket, "base/" + n, os.path.join(out, n)), names))
"""


def run_boto3_process(endpoint: str, bucket: str, inputs: list[Path], out: Path, concurrency: int) -> float:
    """`run_boto3`'s downloads again, timed as a whole new process (information only)."""
    out.mkdir()
    env = {**os.environ, "BENCH_DIR": str(Path(__file__).resolve().parent)}
    args = [sys.executable, "-c", PROCESS_DOWNLOAD, endpoint, bucket, str(out), str(concurrency)]
    os.sync()
    return sh([*args, *(p.name for p in inputs)], out, env)


# --- report ----------------------------------------------------------------------------


def rate(total: int, seconds: float) -> float:
    return total / MIB / seconds


def report(rounds: list[Round], total: int, files: int, concurrency: int, endpoint: str) -> dict[str, float]:
    print(f"\n{total // MIB} MiB in {files} files, concurrency {concurrency}, endpoint {endpoint}")
    heads = ("mlx push", "mlx fetch", "mlx pull", "thin pull", "boto3 up", "boto3 down", "ranged*", "down proc**")
    print(f"{'round':>5} {'first':>6} | " + " ".join(f"{h:>11}" for h in heads))
    for r in rounds:
        cells = [
            *(r.mlx_push, r.mlx_fetch, r.mlx_pull, r.mlx_thin_pull),
            *(r.boto_upload, r.boto_download, r.ranged_ceiling, r.boto_download_process),
        ]
        print(f"{r.index:>5} {r.first:>6} | " + " ".join(f"{rate(total, s):>5.0f} MiB/s" for s in cells))

    def med(field: str) -> float:
        return statistics.median(getattr(r, field) for r in rounds)

    ratios = {
        "push / upload_file": med("boto_upload") / med("mlx_push"),
        "fetch / download_file": med("boto_download") / med("mlx_fetch"),
        "pull / download_file": med("boto_download") / med("mlx_pull"),
        "thin pull / download_file": med("boto_download") / med("mlx_thin_pull"),
    }
    extra = {
        "fetch / ranged ceiling": med("ranged_ceiling") / med("mlx_fetch"),
        "fetch / download proc**": med("boto_download_process") / med("mlx_fetch"),
        "thin pull / download proc**": med("boto_download_process") / med("mlx_thin_pull"),
    }
    fields = [f for f in asdict(rounds[0]) if f not in ("index", "first")]
    print("\nmedian seconds: " + ", ".join(f"{f}={med(f):.2f}" for f in fields))
    print(
        "* ranged: boto3 reading the objects gitmlx stored in 16 MiB ranged GETs into memory, "
        "the server's ceiling for that access pattern (not a target)"
    )
    print(
        "** down proc: the same download_file loop run as a new Python process (start-up, boto3 "
        "import, client), as a command pays them (not a target)"
    )
    print("gitmlx / boto3 throughput:")
    for name, value in ratios.items():
        target = TARGETS.get(name)
        verdict = "(no target)" if target is None else f"target {target:.1f}: " + ("ok" if value >= target else "BELOW")
        print(f"  {name:<26} {value:5.2f}  {verdict}")
    for name, value in extra.items():
        print(f"  {name:<26} {value:5.2f}  (information)")
    return {**ratios, **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--total-mib", type=int, default=1024, help="bytes moved each way (default 1024)")
    parser.add_argument("--files", type=int, default=64, help="number of files (default 64)")
    parser.add_argument("--concurrency", type=int, default=8, help="mlx.concurrency and baseline workers")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; sides alternate going first (default 2)")
    parser.add_argument("--endpoint", help="an S3-compatible endpoint instead of a moto server")
    parser.add_argument("--bucket-prefix", default="gitmlx-bench", help="buckets are PREFIX-<random>")
    parser.add_argument("--workdir", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--json", type=Path, help="write the raw numbers here")
    parser.add_argument("--check", action="store_true", help="exit 1 if a ratio is below the target")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="gitmlx-s3-bench-", dir=args.workdir))
    moto = None
    try:
        if args.endpoint:
            endpoint = args.endpoint
            aws = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
        else:
            moto = MotoProcess(workdir)
            endpoint = moto.url
            aws = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_DEFAULT_REGION": REGION}
            os.environ.update(aws)  # for the baseline client in this process
        aws.setdefault("AWS_EC2_METADATA_DISABLED", "true")
        env = sealed_env(workdir, aws)
        client = make_client(endpoint, args.concurrency)
        size = args.total_mib * MIB // args.files
        total = size * args.files
        print(f"writing {args.files} x {size / MIB:.1f} MiB of random input ...", flush=True)
        inputs = write_inputs(workdir / "inputs", args.files, size)

        rounds = []
        for index in range(1, args.rounds + 1):
            first = "gitmlx" if index % 2 else "boto3"
            bucket_mlx = f"{args.bucket_prefix}-{uuid.uuid4().hex[:12]}"
            bucket_base = f"{args.bucket_prefix}-{uuid.uuid4().hex[:12]}"
            for bucket in (bucket_mlx, bucket_base):
                client.create_bucket(Bucket=bucket)
            here = workdir / f"round-{index}"
            here.mkdir()
            try:
                sides = {
                    "gitmlx": lambda here=here, b=bucket_mlx: run_gitmlx(
                        here / "mlx", env, inputs, f"s3://{b}/team/models", endpoint, args.concurrency
                    ),
                    "boto3": lambda here=here, b=bucket_base: run_boto3(
                        client, b, inputs, here / "boto3-out", args.concurrency
                    ),
                }
                (here / "mlx").mkdir()
                results = {}
                for side in (first, "boto3" if first == "gitmlx" else "gitmlx"):
                    print(f"round {index}: {side} ...", flush=True)
                    results[side] = sides[side]()
                push, fetch, pull, thin_pull = results["gitmlx"]
                upload, download = results["boto3"]
                ceiling, stored = read_bucket_by_ranges(client, bucket_mlx, args.concurrency)
                # Scaled to the logical bytes, so it reads as a throughput like the others.
                ceiling *= total / stored
                process = run_boto3_process(endpoint, bucket_base, inputs, here / "boto3-proc", args.concurrency)
                fields = (push, fetch, pull, thin_pull, upload, download, ceiling, process)
                rounds.append(Round(index, first, *fields))
            finally:
                for bucket in (bucket_mlx, bucket_base):
                    empty_and_delete(client, bucket)
                shutil.rmtree(here, ignore_errors=True)

        ratios = report(rounds, total, args.files, args.concurrency, endpoint)
        if args.json:
            payload = {
                "total_bytes": total,
                "files": args.files,
                "concurrency": args.concurrency,
                "endpoint": "moto (separate process)" if moto else endpoint,
                "rounds": [asdict(r) for r in rounds],
                "ratios": ratios,
                "python": sys.version.split()[0],
                "cpus": os.cpu_count(),
            }
            args.json.write_text(json.dumps(payload, indent=2) + "\n")
        missed = [name for name, target in TARGETS.items() if ratios[name] < target]
        return 1 if args.check and missed else 0
    finally:
        if moto is not None:
            moto.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
