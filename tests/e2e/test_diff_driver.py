"""The `diff=mlx` driver through real git: `git diff`, `git log -p` and `git show` on
tracked safetensors / npz / CSV / Parquet artifacts name what changed inside them.

Git runs `git-mlx textconv` on the smudged content of each side, so these tests also
cover the sides whose content is not local (the smudge fetches it) or cannot be had
(skip-smudge, missing object: the pointer is summarised instead).
"""

from __future__ import annotations

import json
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.repos import (
    Repos,
    assert_pointer,
    clone,
    commit_all,
    corrupt_remote_object,
    make_repo_with_bare_remote,
)
from tests.support.stores import assert_local_object, has_local_object

PATTERNS = ("*.safetensors", "*.npz", "*.csv", "*.parquet", "*.jsonl")

# No name is a substring of another, so "appears on a line" is unambiguous.
MODEL = {
    "embed.weight": ("F32", [64, 32]),
    "layers.0.attn.q": ("F32", [32, 32]),
    "layers.0.attn.k": ("F32", [32, 32]),
    "layers.0.mlp.up": ("F16", [32, 128]),
    "layers.1.mlp.up": ("F16", [32, 128]),
    "head.weight": ("F32", [32, 64]),
}


@pytest.fixture
def work(sealed) -> Repos:
    return make_repo_with_bare_remote(sealed.root, patterns=PATTERNS)


def save_model(path: Path, spec: dict[str, tuple[str, list[int]]], seeds: dict[str, int] | None = None) -> None:
    """A safetensors file with random values (seed per tensor): written by the
    `safetensors` package when it and numpy are installed, else by a minimal writer."""
    seeds = seeds or {}
    try:
        import numpy as np
        from safetensors.numpy import save_file
    except ImportError:
        _save_model_by_hand(path, spec, seeds)
        return
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    tensors = {
        name: np.random.default_rng(seeds.get(name, i)).standard_normal(shape).astype(dtypes[dtype])
        for i, (name, (dtype, shape)) in enumerate(spec.items())
    }
    save_file(tensors, str(path), metadata={"format": "np"})


def _save_model_by_hand(path: Path, spec: dict[str, tuple[str, list[int]]], seeds: dict[str, int]) -> None:
    sizes = {"F32": 4, "F16": 2, "I64": 8}
    header: dict[str, object] = {"__metadata__": {"format": "np"}}
    blobs = []
    offset = 0
    for i, (name, (dtype, shape)) in enumerate(spec.items()):
        count = 1
        for dim in shape:
            count *= dim
        data = random.Random(seeds.get(name, i)).randbytes(count * sizes[dtype])
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(blobs))


def changed_lines(diff: str) -> tuple[list[str], list[str]]:
    """The '-' and '+' lines of the hunks of a unified diff, without the marker (file
    headers such as '--- a/x' are skipped by position, not by their look)."""
    minus, plus = [], []
    in_hunk = False
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            in_hunk = False
        elif line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith("-"):
            minus.append(line[1:])
        elif in_hunk and line.startswith("+"):
            plus.append(line[1:])
    return minus, plus


def tensor_names_on(lines: list[str]) -> set[str]:
    return {name for name in MODEL if any(name in line for line in lines)}


def oid_of(repo: Path, spec: str) -> str:
    return assert_pointer(repo, spec.split(":", 1)[1], spec=spec.split(":", 1)[0])[0]


# --- install --------------------------------------------------------------------------------


def test_install_configures_the_textconv_and_uninstall_removes_it(sealed) -> None:
    repo = sealed.root / "fresh"
    git("init", "-q", repo, cwd=sealed.root)
    assert git("config", "--global", "diff.mlx.textconv", cwd=repo).stdout.strip() == "git-mlx textconv"
    assert git("config", "--global", "diff.mlx.cachetextconv", cwd=repo, check=False).stdout == ""

    mlx("install", "--local", cwd=repo)
    assert git("config", "--local", "diff.mlx.textconv", cwd=repo).stdout.strip() == "git-mlx textconv"
    mlx("uninstall", "--local", cwd=repo)
    assert git("config", "--local", "diff.mlx.textconv", cwd=repo, check=False).stdout == ""


# --- safetensors ------------------------------------------------------------------------------


def test_diff_of_one_changed_tensor_names_that_tensor_and_no_other(work: Repos) -> None:
    model = work.work / "model.safetensors"
    save_model(model, MODEL)
    commit_all(work.work, "v1")
    save_model(model, MODEL, seeds={"layers.0.attn.k": 99})

    results = {"diff": git("diff", cwd=work.work)}
    commit_all(work.work, "v2")
    results["log -p"] = git("log", "-p", "-1", cwd=work.work)
    results["show"] = git("show", "HEAD", cwd=work.work)
    results["diff HEAD~1 HEAD"] = git("diff", "HEAD~1", "HEAD", "--", "model.safetensors", cwd=work.work)

    for what, result in results.items():
        assert_no_traceback(result)
        assert "Binary files" not in result.stdout, what
        minus, plus = changed_lines(result.stdout)
        assert tensor_names_on(minus) == {"layers.0.attn.k"}, f"{what}:\n{result.stdout}"
        assert tensor_names_on(plus) == {"layers.0.attn.k"}, f"{what}:\n{result.stdout}"
        assert len(minus) == len(plus) == 1, f"{what}:\n{result.stdout}"
        assert minus[0].startswith("layers.0.attn.k  F32  [32, 32]  sha256:")


def test_diff_shows_tensors_added_removed_reshaped_and_retyped(work: Repos) -> None:
    model = work.work / "model.safetensors"
    save_model(model, MODEL)
    commit_all(work.work, "v1")
    spec = dict(MODEL)
    del spec["head.weight"]  # removed
    spec["lm_head.bias"] = ("F32", [64])  # added
    spec["embed.weight"] = ("F32", [32, 64])  # reshaped
    spec["layers.1.mlp.up"] = ("F32", [32, 128])  # dtype changed
    save_model(model, spec)

    minus, plus = changed_lines(git("diff", cwd=work.work).stdout)

    assert tensor_names_on(minus) == {"head.weight", "embed.weight", "layers.1.mlp.up"}
    assert {line.split()[0] for line in plus if not line.startswith("safetensors:")} == {
        "lm_head.bias",
        "embed.weight",
        "layers.1.mlp.up",
    }
    assert any(line.startswith("embed.weight  F32  [32, 64]") for line in plus)
    assert any(line.startswith("layers.1.mlp.up  F32  [32, 128]") for line in plus)
    assert any(line.startswith("layers.1.mlp.up  F16  [32, 128]") for line in minus)


def test_diff_of_a_commit_whose_old_content_is_not_local_smudges_it_first(work: Repos, sealed) -> None:
    model = work.work / "model.safetensors"
    save_model(model, MODEL)
    commit_all(work.work, "v1")
    save_model(model, MODEL, seeds={"head.weight": 7})
    commit_all(work.work, "v2")
    git("push", "-q", "origin", "main", cwd=work.work)
    dest = sealed.root / "clone"
    clone(work.remote, dest)
    old = oid_of(dest, "HEAD~1:model.safetensors")
    assert not has_local_object(dest, old)  # the clone restored only HEAD

    shown = git("show", "HEAD", cwd=dest)

    assert_no_traceback(shown)
    minus, plus = changed_lines(shown.stdout)
    assert tensor_names_on(minus) == tensor_names_on(plus) == {"head.weight"}
    assert_local_object(dest, old)  # git ran the smudge filter for it


def test_diff_with_skip_smudge_shows_the_pointers(work: Repos, sealed) -> None:
    model = work.work / "model.safetensors"
    save_model(model, MODEL)
    commit_all(work.work, "v1")
    save_model(model, MODEL, seeds={"head.weight": 7})
    commit_all(work.work, "v2")
    git("push", "-q", "origin", "main", cwd=work.work)
    dest = sealed.root / "clone"
    skip = {"GIT_MLX_SKIP_SMUDGE": "1"}
    clone(work.remote, dest, env=skip)

    shown = git("show", "HEAD", cwd=dest, env=skip)

    assert_no_traceback(shown)
    minus, plus = changed_lines(shown.stdout)
    old, new = oid_of(dest, "HEAD~1:model.safetensors"), oid_of(dest, "HEAD:model.safetensors")
    size = model.stat().st_size
    assert minus == [f"gitmlx pointer: oid sha256:{old}, size {size} (content not checked out)"]
    assert plus == [f"gitmlx pointer: oid sha256:{new}, size {size} (content not checked out)"]


def test_pointers_whose_objects_are_local_diff_as_their_content(work: Repos, sealed) -> None:
    model = work.work / "model.safetensors"
    save_model(model, MODEL)
    commit_all(work.work, "v1")
    save_model(model, MODEL, seeds={"head.weight": 7})
    commit_all(work.work, "v2")
    git("push", "-q", "origin", "main", cwd=work.work)
    dest = sealed.root / "clone"
    skip = {"GIT_MLX_SKIP_SMUDGE": "1"}
    clone(work.remote, dest, env=skip)
    mlx("fetch", "--all", cwd=dest)  # objects in the store, work tree still pointers

    shown = git("show", "HEAD", cwd=dest, env=skip)

    assert_no_traceback(shown)
    minus, plus = changed_lines(shown.stdout)
    assert tensor_names_on(minus) == tensor_names_on(plus) == {"head.weight"}, shown


def test_a_file_over_the_smudge_limit_still_diffs_as_its_content(work: Repos) -> None:
    model = work.work / "model.safetensors"
    save_model(model, MODEL)
    commit_all(work.work, "v1")
    save_model(model, MODEL, seeds={"embed.weight": 3})
    commit_all(work.work, "v2")
    # Above mlx.smudgelimit the smudge filter answers with the pointer (the post-checkout
    # hook places the content); the textconv then reads the object from the store.
    git("config", "mlx.smudgelimit", "1000", cwd=work.work)

    shown = git("show", "HEAD", cwd=work.work)

    assert_no_traceback(shown)
    minus, plus = changed_lines(shown.stdout)
    assert tensor_names_on(minus) == tensor_names_on(plus) == {"embed.weight"}, shown


def test_diff_when_an_old_side_cannot_be_fetched_shows_its_pointer_and_succeeds(work: Repos, sealed) -> None:
    model = work.work / "model.safetensors"
    save_model(model, MODEL)
    commit_all(work.work, "v1")
    save_model(model, MODEL, seeds={"head.weight": 7})
    commit_all(work.work, "v2")
    git("push", "-q", "origin", "main", cwd=work.work)
    dest = sealed.root / "clone"
    clone(work.remote, dest)
    old = oid_of(dest, "HEAD~1:model.safetensors")
    corrupt_remote_object(work.remote, old, "delete")

    shown = git("show", "HEAD", cwd=dest)

    assert_no_traceback(shown)
    minus, plus = changed_lines(shown.stdout)
    assert minus == [f"gitmlx pointer: oid sha256:{old}, size {model.stat().st_size} (content not checked out)"]
    assert tensor_names_on(plus) == set(MODEL)  # the new side is the real summary
    assert "model.safetensors" in shown.stderr  # the smudge said which file it could not restore


def test_malformed_safetensors_diffs_as_size_and_hash_without_failing(work: Repos) -> None:
    bad = work.work / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 10) + b"{not json}" + b"\x00" * 64)
    commit_all(work.work, "v1")
    bad.write_bytes(struct.pack("<Q", 10) + b"{not json}" + b"\x01" * 64)

    result = git("diff", cwd=work.work)

    assert_no_traceback(result)
    minus, plus = changed_lines(result.stdout)
    assert [line.split(",")[0] for line in minus] == ["binary data: 82 bytes (82 B)"]
    assert [line.split(",")[0] for line in plus] == ["binary data: 82 bytes (82 B)"]


# --- npz, tables ------------------------------------------------------------------------------


def test_npz_diff_names_the_changed_array(work: Repos) -> None:
    np = pytest.importorskip("numpy")
    path = work.work / "arrays.npz"
    np.savez_compressed(path, alpha=np.ones(100), beta=np.arange(10), gamma=np.eye(3))
    commit_all(work.work, "v1")
    np.savez_compressed(path, alpha=np.ones(100), beta=np.arange(10) * 2, gamma=np.eye(3))

    minus, plus = changed_lines(git("diff", cwd=work.work).stdout)

    assert [line.split()[0] for line in minus] == ["beta"]
    assert [line.split()[0] for line in plus] == ["beta"]


def test_csv_diff_shows_ten_rows_added_and_one_removed(work: Repos) -> None:
    rows = [f"{i},sample {i},{i * 0.25}" for i in range(100)]
    path = work.work / "data.csv"
    path.write_text("id,text,score\n" + "\n".join(rows) + "\n")
    commit_all(work.work, "v1")
    added = [f"{i},sample {i},{i * 0.25}" for i in range(100, 110)]
    path.write_text("id,text,score\n" + "\n".join([r for r in rows if not r.startswith("42,")] + added) + "\n")

    result = git("diff", cwd=work.work)

    assert_no_traceback(result)
    minus, plus = changed_lines(result.stdout)
    assert [line for line in minus if not line.endswith(" rows)")] == ["42,sample 42,10.5"]
    assert [line for line in plus if not line.endswith(" rows)")] == added
    assert (minus[-1], plus[-1]) == ("(100 rows)", "(109 rows)")


def test_jsonl_diff_shows_rows_as_canonical_json(work: Repos) -> None:
    path = work.work / "data.jsonl"
    path.write_text('{"id": 1, "label": "cat"}\n{"id": 2, "label": "dog"}\n')
    commit_all(work.work, "v1")
    path.write_text('{"label": "cat", "id": 1}\n{"id": 2, "label": "bird"}\n')

    minus, plus = changed_lines(git("diff", cwd=work.work).stdout)

    assert minus == ['{"id":2,"label":"dog"}']
    assert plus == ['{"id":2,"label":"bird"}']


def test_parquet_diff_names_the_changed_column(work: Repos) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 200
    table = pa.table(
        {"id": list(range(n)), "label": [f"l{i % 7}" for i in range(n)], "score": [i / 4 for i in range(n)]}
    )
    path = work.work / "data.parquet"
    pq.write_table(table, path)
    commit_all(work.work, "v1")
    pq.write_table(table.set_column(1, "label", pa.array([f"l{i % 5}" for i in range(n)])), path)

    result = git("diff", cwd=work.work)

    assert_no_traceback(result)
    minus, plus = changed_lines(result.stdout)
    columns = [line for line in minus + plus if line.startswith("row group")]
    assert columns and all(line.startswith("row group 0 column label:") for line in columns), result.stdout
    assert not [line for line in minus + plus if "column id" in line or "column score" in line]


def test_diff_from_a_subdirectory_of_a_file_with_an_awkward_name(work: Repos) -> None:
    sub = work.work / "data sets" / "nested"
    sub.mkdir(parents=True)
    name = "-train 'v1'.csv"
    (sub / name).write_text("a\n1\n")
    commit_all(work.work, "v1")
    (sub / name).write_text("a\n1\n2\n")

    result = git("diff", cwd=sub)
    committed = git("log", "-p", "-1", "--", name, cwd=sub)

    minus, plus = changed_lines(result.stdout)
    assert plus == ["2", "(2 rows)"] and minus == ["(1 row)"], result
    assert changed_lines(committed.stdout) == ([], ["csv columns: a", "1", "(1 row)"]), committed


def test_the_textconv_path_imports_no_heavy_dependency(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a\n1\n")
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")
    code = (
        "import sys; from gitmlx import cli\n"
        f"for name in ('t.csv', 'm.safetensors'): cli.main(['textconv', {str(tmp_path)!r} + '/' + name])\n"
        "heavy = ('click', 'tqdm', 'boto3', 'botocore', 'pygit2', 'numpy', 'pyarrow', 'safetensors')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("csv columns: a\n1\n")
    assert proc.stderr.strip() == "[]"
