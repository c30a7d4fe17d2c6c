"""The ML workflow of docs/workflow.md, end to end: datasets and checkpoints tracked by
gitmlx, push to S3 (moto on 127.0.0.1), a reviewer reads the tensor and dataset diffs, a
CI job clones with skip-smudge and pulls only the model it evaluates, and Python code
loads a tensor at a revision. Then MLflow with the real client (the `mlflow` extra):
its saved model folders versioned by gitmlx, its tracking store kept out of git, and a
model loaded by revision from a clone elsewhere.

Each step here is a command of docs/workflow.md, in the same order.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import sha256_file
from tests.support.repos import assert_clean_worktree, assert_pointer, clone, make_repo_with_bare_remote, tracked_files

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


def test_ml_workflow_from_dataset_to_ci(s3_env, sealed, s3_endpoint: str, s3_bucket: str) -> None:
    root = sealed.root
    origin = root / "origin.git"
    git("init", "-q", "--bare", str(origin), cwd=root)

    # 1. Set up the project.
    project = root / "ml-project"
    git("init", "-q", str(project), cwd=root)
    git("remote", "add", "origin", str(origin), cwd=project)
    mlx("install", "--local", cwd=project)
    mlx("track", "datasets/**", "checkpoints/*.safetensors", cwd=project)
    mlx("remote", "set", f"s3://{s3_bucket}/team/ml", "--endpoint-url", s3_endpoint, cwd=project)

    # 2. A dataset, and a first training run.
    (project / "datasets").mkdir()
    rows = [f"{i},sample {i},{i % 3}" for i in range(200)]
    (project / "datasets" / "train.csv").write_text("id,text,label\n" + "\n".join(rows) + "\n")
    write_safetensors(project / "checkpoints" / "model.safetensors", seed=0)
    git("add", ".", cwd=project)
    git("commit", "-q", "-m", "data v1, train run 1", cwd=project)
    git("tag", "v1", cwd=project)
    push1 = git("push", "-q", "origin", "HEAD:main", "v1", cwd=project)
    assert_no_traceback(push1)

    # 3. The dataset grows (10 rows appended, 1 removed); training changes one tensor.
    rows = [r for r in rows if not r.startswith("7,")] + [f"{i},sample {i},{i % 3}" for i in range(200, 210)]
    (project / "datasets" / "train.csv").write_text("id,text,label\n" + "\n".join(rows) + "\n")
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


# --- 7. MLflow ----------------------------------------------------------------------------

#: docs/workflow.md, "Train": the tracking store stays out of git, the model folder goes in.
TRAIN = """
import os, shutil, sys
import mlflow, mlflow.pyfunc

class AddK(mlflow.pyfunc.PythonModel):
    def __init__(self, k):
        self.k = k

    def predict(self, context, model_input, params=None):
        return [x + self.k for x in model_input]

k = int(sys.argv[1])
mlflow.set_tracking_uri("file:" + os.path.abspath("mlruns"))  # in .gitignore
with mlflow.start_run() as run:
    mlflow.log_param("k", k)
    shutil.rmtree("models/add-k", ignore_errors=True)  # save_model refuses an existing folder
    mlflow.pyfunc.save_model("models/add-k", python_model=AddK(k), pip_requirements=["mlflow-skinny"])
    print(run.info.artifact_uri)
"""

#: docs/workflow.md, "Load a model by revision": each file of the folder through gitmlx.open.
LOAD = """
import pathlib, shutil, subprocess, sys, tempfile
import gitmlx, mlflow.pyfunc

def model_at(folder, rev):
    names = subprocess.run(
        ["git", "ls-tree", "-r", "-z", "--name-only", rev, "--", folder],
        capture_output=True, check=True,
    ).stdout.decode().split("\\0")
    copy = pathlib.Path(tempfile.mkdtemp())
    for name in filter(None, names):
        target = copy / pathlib.PurePosixPath(name).relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        with gitmlx.open(name, rev=rev) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return mlflow.pyfunc.load_model(str(copy))

print(mlflow.pyfunc.load_model("models/add-k").predict([1, 2]))
print(model_at("models/add-k", sys.argv[1]).predict([1, 2]))
"""


def run_python(code: str, cwd: Path, *args: str) -> str:
    env = dict(os.environ, MLFLOW_ALLOW_FILE_STORE="true", MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_mlflow_model_folders_in_gitmlx_load_by_revision_in_a_clone_elsewhere(sealed) -> None:
    if importlib.util.find_spec("mlflow") is None:
        if os.environ.get("CI"):
            pytest.fail("mlflow is not installed, and CI must run this test (the 'test' extra installs it)")
        pytest.skip("the MLflow client is an optional extra: pip install -e '.[mlflow]'")
    root = sealed.root
    repos = make_repo_with_bare_remote(root, patterns=["datasets/**", "models/**"], name="ml-project")
    project = repos.work
    (project / ".gitignore").write_text("mlruns/\n")

    artifact_uri = run_python(TRAIN, project, "3").strip()
    assert artifact_uri.startswith(f"file://{project}/mlruns/"), artifact_uri  # absolute: useless in a clone
    git("add", ".", cwd=project)
    git("commit", "-q", "-m", "model k=3", cwd=project)
    git("tag", "v1", cwd=project)
    run_python(TRAIN, project, "5")
    git("add", ".", cwd=project)
    git("commit", "-q", "-m", "model k=5", cwd=project)
    assert_no_traceback(git("push", "-q", "origin", "main", "v1", cwd=project))
    assert not [p for p in tracked_files(project) if p.startswith("mlruns/")]
    assert_pointer(project, "models/add-k/python_model.pkl", "HEAD")

    elsewhere = root / "elsewhere" / "clone"
    elsewhere.parent.mkdir()
    clone(repos.remote, elsewhere)
    assert_clean_worktree(elsewhere)
    now, then = run_python(LOAD, elsewhere, "v1").splitlines()
    assert (now, then) == ("[6, 7]", "[4, 5]")
    assert_clean_worktree(elsewhere)
