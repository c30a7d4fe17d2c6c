"""`git diff` of a dataset leads with its counts: rows before and after, added, removed
and (with a key) changed, and the columns that moved. Git hands both sides to the
external driver (`diff.mlx.command`); `git log -p` and `git show` keep the textconv.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import write_safetensors
from tests.support.repos import (
    Repos,
    assert_pointer,
    clone,
    commit_all,
    corrupt_remote_object,
    make_repo_with_bare_remote,
)

PATTERNS = ("*.csv", "*.parquet", "*.jsonl")


@pytest.fixture
def work(sealed) -> Repos:
    return make_repo_with_bare_remote(sealed.root, patterns=PATTERNS)


def lead(diff: str) -> list[str]:
    """The lines between the `index` line and `---` of the first file of a diff."""
    lines = diff.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("index "))
    stop = next(i for i, line in enumerate(lines) if line.startswith("--- "))
    return lines[start + 1 : stop]


def csv_rows(ids) -> str:
    return "id,text,score\n" + "".join(f"{i},sample {i},{i * 0.25}\n" for i in ids)


def test_csv_diff_leads_with_ten_added_and_one_removed(work: Repos) -> None:
    path = work.work / "data.csv"
    path.write_text(csv_rows(range(1000)))
    commit_all(work.work, "v1")
    path.write_text(csv_rows([i for i in range(1010) if i != 42]))

    result = git("diff", cwd=work.work)

    assert_no_traceback(result)
    assert lead(result.stdout) == ["rows: 1000 \u2192 1009 (+10 \u22121 ~0 changed, key id)"]
    assert "+1009,sample 1009,252.25" in result.stdout.splitlines()  # row detail follows
    logged = git("log", "-p", "-1", "--", "data.csv", cwd=work.work).stdout
    assert "rows:" not in logged and "csv columns: id,text,score" in logged  # log -p: the textconv
    commit_all(work.work, "v2")
    logged = git("log", "-p", "--ext-diff", "-1", cwd=work.work).stdout
    assert lead(logged) == ["rows: 1000 \u2192 1009 (+10 \u22121 ~0 changed, key id)"]  # asked for


def test_a_row_with_the_same_key_and_new_values_counts_as_changed(work: Repos) -> None:
    path = work.work / "data.csv"
    path.write_text(csv_rows(range(100)))
    commit_all(work.work, "v1")
    path.write_text(csv_rows(range(100)).replace("7,sample 7,", "7,edited,"))

    assert lead(git("diff", cwd=work.work).stdout) == [
        "rows: 100 \u2192 100 (+0 \u22120 ~1 changed, key id)",
        "columns: changed text",
    ]
    # Without a key the edit is a row removed and a row added; -mlx-key turns the guess off.
    (work.work / ".git" / "info" / "attributes").write_text("data.csv -mlx-key\n")
    assert lead(git("diff", cwd=work.work).stdout) == ["rows: 100 \u2192 100 (+1 \u22121)"]
    # A configured key names any column.
    (work.work / ".git" / "info" / "attributes").write_text("data.csv mlx-key=text\n")
    assert lead(git("diff", cwd=work.work).stdout) == ["rows: 100 \u2192 100 (+1 \u22121 ~0 changed, key text)"]


def test_jsonl_counts_and_a_new_file(work: Repos) -> None:
    path = work.work / "data.jsonl"
    path.write_text("".join(f'{{"id": {i}, "label": "x"}}\n' for i in range(5)))
    commit_all(work.work, "v1")
    path.write_text("".join(f'{{"label": "x", "id": {i}}}\n' for i in range(1, 8)))

    assert lead(git("diff", cwd=work.work).stdout) == ["rows: 5 \u2192 7 (+3 \u22121)"]
    (work.work / "more.csv").write_text("a\n1\n2\n")
    git("add", "more.csv", cwd=work.work)
    shown = git("diff", "--cached", "--", "more.csv", cwd=work.work).stdout
    assert "new file mode 100644" in shown and lead(shown) == ["rows: 0 \u2192 2 (+2 \u22120)"]


def test_parquet_diff_names_added_and_changed_columns(work: Repos) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = work.work / "data.parquet"
    ids = list(range(1000))
    pq.write_table(pa.table({"id": ids, "label": [f"l{i % 7}" for i in ids], "score": [i / 4 for i in ids]}), path)
    commit_all(work.work, "v1")
    ids = [i for i in range(1010) if i != 42]
    labels = [f"l{i % 7}" if i != 7 else "edited" for i in ids]
    pq.write_table(pa.table({"id": ids, "label": labels, "score": [i / 4 for i in ids], "extra": [1] * len(ids)}), path)

    result = git("diff", cwd=work.work)

    assert_no_traceback(result)
    assert lead(result.stdout) == [
        "rows: 1000 \u2192 1009 (+10 \u22121 ~1 changed, key id)",
        "columns: added extra; changed label",
    ]


def test_install_configures_the_external_driver_and_uninstall_removes_it(sealed) -> None:
    repo = sealed.root / "fresh"
    git("init", "-q", repo, cwd=sealed.root)
    assert git("config", "--global", "diff.mlx.command", cwd=repo).stdout.strip() == "git-mlx diff-driver"
    mlx("install", "--local", cwd=repo)
    assert git("config", "--local", "diff.mlx.command", cwd=repo).stdout.strip() == "git-mlx diff-driver"
    mlx("uninstall", "--local", cwd=repo)
    assert git("config", "--local", "diff.mlx.command", cwd=repo, check=False).stdout == ""


def test_the_external_driver_imports_no_heavy_dependency(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("id,a\n1,x\n")
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}")
    code = (
        "import sys; from gitmlx import cli\n"
        "for name in ('t.csv', 'm.safetensors'):\n"
        "    cli.main(['diff-driver', name, '/dev/null', '.', '.', name, '.', '100644'])\n"
        "heavy = ('click', 'tqdm', 'boto3', 'botocore', 'pygit2', 'numpy', 'pyarrow', 'safetensors')\n"
        "print(sorted(m for m in heavy if m in sys.modules), file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "rows: 0 \u2192 1 (+1 \u22120 ~0 changed, key id)" in proc.stdout.splitlines()
    assert "+1,x" in proc.stdout.splitlines()
    assert proc.stderr.strip() == "[]"


# --- tensors whose content is not local (the artifact remote here is the embedded one) ----


@pytest.fixture
def two_checkpoints(sealed) -> tuple[Repos, Path]:
    """v1 and v2 of model.safetensors (layers.1 changed) and arr.npy (changed), pushed, and
    a skip-smudge clone that holds neither."""
    repos = make_repo_with_bare_remote(sealed.root, patterns=("*.safetensors", "*.npy"))
    rng = random.Random(1)
    tensors = {f"layers.{i}.weight": rng.randbytes(200_000) for i in range(4)}
    write_safetensors(repos.work / "model.safetensors", tensors)
    (repos.work / "arr.npy").write_bytes(npy(rng.randbytes(80_000)))
    commit_all(repos.work, "v1")
    git("tag", "v1", cwd=repos.work)
    write_safetensors(repos.work / "model.safetensors", {**tensors, "layers.1.weight": rng.randbytes(200_000)})
    (repos.work / "arr.npy").write_bytes(npy(rng.randbytes(80_000)))
    commit_all(repos.work, "v2")
    git("push", "-q", "origin", "main", "v1", cwd=repos.work)
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    return repos, dest


def npy(data: bytes) -> bytes:
    header = f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({len(data)},), }}".encode()
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def test_tensor_and_array_diffs_of_content_not_local_name_what_changed(two_checkpoints) -> None:
    _, dest = two_checkpoints

    model = git("diff", "v1", "HEAD", "--", "model.safetensors", cwd=dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    array = git("diff", "v1", "HEAD", "--", "arr.npy", cwd=dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})

    assert_no_traceback(model, array)
    assert lead(model.stdout)[0].startswith("tensors: 4 \u2192 4 (+0 \u22120 ~1 changed;"), model.stdout
    assert lead(model.stdout)[1:] == ["changed layers.1.weight  U8 [200000]"]
    assert lead(array.stdout)[0].startswith("arrays: 1 \u2192 1 (+0 \u22120 ~1 changed;"), array.stdout
    assert lead(array.stdout)[1:] == ["changed arr.npy  |u1 [80000]"]


def test_a_damaged_remote_chunk_is_reported_and_the_diff_still_succeeds(two_checkpoints) -> None:
    repos, dest = two_checkpoints
    old = assert_pointer(dest, "model.safetensors", spec="v1")[0]
    corrupt_remote_object(repos.remote, old, "flip")  # the chunk holding the header

    result = git("diff", "v1", "HEAD", "--", "model.safetensors", cwd=dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})

    assert_no_traceback(result)
    assert result.returncode == 0
    (line,) = lead(result.stdout)
    assert line.startswith("(not counted: IntegrityError: ") and "failed verification" in line, line


def test_a_csv_line_over_the_cap_is_not_counted_and_the_diff_succeeds(work: Repos) -> None:
    path = work.work / "data.csv"
    path.write_text("id,text\n1,a\n")
    commit_all(work.work, "v1")
    path.write_text("id,text\n1," + "x" * (16 * 1024 * 1024 + 10) + "\n")

    result = git("diff", cwd=work.work)

    assert_no_traceback(result)
    (line,) = lead(result.stdout)
    assert line.startswith("(not counted: Malformed: a line is longer than"), line


DRIVER_RSS = """\
import resource, subprocess, sys
status = subprocess.call(["git-mlx", "diff-driver", *sys.argv[2:]])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(status)
"""


@pytest.mark.slow
def test_counting_a_3_million_row_csv_keeps_the_driver_under_100_mib(work: Repos, tmp_path: Path) -> None:
    path = work.work / "big.csv"
    rows = 3_000_000
    with path.open("w") as f:
        f.write("id,text,score\n")
        f.writelines(f"{i},sample text {i},{i * 0.25}\n" for i in range(rows))
    commit_all(work.work, "v1")
    with path.open("w") as f:
        f.write("id,text,score\n")
        f.writelines(f"{i},sample text {i},{i * 0.25}\n" for i in range(rows + 10) if i != 1234)
    wrapper, report = tmp_path / "rss.py", tmp_path / "rss-kib"
    wrapper.write_text(DRIVER_RSS)

    command = f"{sys.executable} {wrapper} {report}"
    result = git("-c", f"diff.mlx.command={command}", "diff", cwd=work.work)

    assert_no_traceback(result)
    assert lead(result.stdout) == [f"rows: {rows} \u2192 {rows + 9} (+10 \u22121 ~0 changed, key id)"]
    peak_kib = int(report.read_text())
    assert peak_kib < 100 * 1024, f"the driver peaked at {peak_kib} KiB"
