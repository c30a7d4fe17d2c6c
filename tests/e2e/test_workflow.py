"""The ML workflow of docs/workflow.md, end to end: datasets and MLflow-layout artifacts
tracked by gitmlx, training commits a checkpoint, push to S3 (moto on 127.0.0.1), a
reviewer reads the tensor and dataset diffs, a CI job clones with skip-smudge and pulls
only the model it evaluates, and Python code loads a tensor at a revision.

Each step here is a command of docs/workflow.md, in the same order.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import sha256_file
from tests.support.repos import assert_clean_worktree

RUN_ID = "3f9c2a7d5e1b4c8a9d0e6f1a2b3c4d5e"
TENSORS = {"encoder.weight": (256, 256), "encoder.bias": (256,), "head.weight": (10, 256)}


def write_safetensors(path: Path, seed: int, changed: str | None = None) -> None:
    """A float32 safetensors file; `changed` gets different values than seed 0 gives it."""
    import random

    header, blobs, offset = {}, [], 0
    for name, shape in TENSORS.items():
        count = 1
        for n in shape:
            count *= n
        rng = random.Random(f"{seed if name == changed else 0}-{name}")
        data = struct.pack(f"<{count}f", *(rng.uniform(-1, 1) for _ in range(count)))
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def write_mlflow_run(project: Path, model_seed: int, changed: str | None) -> Path:
    """Files in MLflow's local layout: mlruns/<experiment>/<run>/{meta.yaml,artifacts/...}."""
    run = project / "mlruns" / "0" / RUN_ID
    (run / "artifacts" / "model").mkdir(parents=True, exist_ok=True)
    (run / "meta.yaml").write_text(f"run_id: {RUN_ID}\nexperiment_id: '0'\nstatus: 3\n")
    (run / "artifacts" / "model" / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    write_safetensors(run / "artifacts" / "model" / "model.safetensors", model_seed, changed)
    return run


def test_ml_workflow_from_dataset_to_ci(s3_env, sealed, s3_endpoint: str, s3_bucket: str) -> None:
    root = sealed.root
    origin = root / "origin.git"
    git("init", "-q", "--bare", str(origin), cwd=root)

    # 1. Set up the project.
    project = root / "ml-project"
    git("init", "-q", str(project), cwd=root)
    git("remote", "add", "origin", str(origin), cwd=project)
    mlx("install", "--local", cwd=project)
    mlx("track", "datasets/**", "mlruns/**/artifacts/**", "checkpoints/*.safetensors", cwd=project)
    mlx("remote", "set", f"s3://{s3_bucket}/team/ml", "--endpoint-url", s3_endpoint, cwd=project)

    # 2. A dataset, and a first training run.
    (project / "datasets").mkdir()
    rows = [f"{i},sample {i},{i % 3}" for i in range(200)]
    (project / "datasets" / "train.csv").write_text("id,text,label\n" + "\n".join(rows) + "\n")
    write_mlflow_run(project, model_seed=0, changed=None)
    write_safetensors(project / "checkpoints" / "model.safetensors", seed=0)
    git("add", ".", cwd=project)
    git("commit", "-q", "-m", "data v1, train run 1", cwd=project)
    git("tag", "v1", cwd=project)
    push1 = git("push", "-q", "origin", "HEAD:main", "v1", cwd=project)
    assert_no_traceback(push1)

    # 3. The dataset grows (10 rows appended, 1 removed); training changes one tensor.
    rows = [r for r in rows if not r.startswith("7,")] + [f"{i},sample {i},{i % 3}" for i in range(200, 210)]
    (project / "datasets" / "train.csv").write_text("id,text,label\n" + "\n".join(rows) + "\n")
    write_mlflow_run(project, model_seed=1, changed="head.weight")
    write_safetensors(project / "checkpoints" / "model.safetensors", seed=1, changed="head.weight")
    git("add", ".", cwd=project)
    git("commit", "-q", "-m", "data v2, train run 2", cwd=project)
    git("push", "-q", "origin", "HEAD:main", cwd=project)

    # 4. A reviewer reads what changed.
    model_diff = git("diff", "v1", "HEAD", "--", "checkpoints/model.safetensors", cwd=project).stdout
    changed_lines = [line for line in model_diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed_lines and all("head.weight" in line for line in changed_lines), model_diff
    data_diff = git("diff", "v1", "HEAD", "--", "datasets/train.csv", cwd=project).stdout
    added = [line for line in data_diff.splitlines() if line.startswith("+") and ",sample " in line]
    removed = [line for line in data_diff.splitlines() if line.startswith("-") and ",sample " in line]
    assert len(added) == 10 and len(removed) == 1, data_diff

    # 5. CI: clone without artifacts, pull only the model it evaluates.
    ci = root / "ci"
    env = {"GIT_MLX_SKIP_SMUDGE": "1"}
    assert_no_traceback(git("clone", "-q", str(origin), str(ci), cwd=root, env=env))
    pulled = mlx("pull", "-I", "checkpoints/model.safetensors", cwd=ci)
    assert_no_traceback(pulled)
    assert sha256_file(ci / "checkpoints" / "model.safetensors") == sha256_file(
        project / "checkpoints" / "model.safetensors"
    )
    assert (ci / "datasets" / "train.csv").stat().st_size < 1024, "the dataset should stay a pointer"
    assert_clean_worktree(ci)

    # 6. Python: one tensor of the model as it was at v1, without checking v1 out.
    code = (
        "import gitmlx, json, sys;"
        "t = gitmlx.load_tensors('checkpoints/model.safetensors', names=['head.weight'], rev='v1');"
        "print(json.dumps({k: [list(v.shape), float(v.sum())] for k, v in t.items()}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ci, capture_output=True, text=True, env=os.environ.copy())
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    assert loaded["head.weight"][0] == [10, 256]
    first = read_with_gitmlx_open(ci, "datasets/train.csv", "v1")
    assert first.count(b"\n") == 201
    assert (ci / "datasets" / "train.csv").stat().st_size < 1024, "reading v1 must not touch the work tree"


def read_with_gitmlx_open(repo: Path, path: str, rev: str) -> bytes:
    """`gitmlx.open(path, rev=rev).read()`, run in `repo` as a user's script would."""
    code = f"import gitmlx, sys; sys.stdout.buffer.write(gitmlx.open({path!r}, rev={rev!r}).read())"
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout
