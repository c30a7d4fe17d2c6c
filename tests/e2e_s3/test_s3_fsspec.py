"""The `gitmlx` fsspec protocol: pandas and pyarrow read a Parquet artifact at an older
revision, in a skip-smudge clone, fetching only the byte ranges they need (counted at a
loopback proxy in front of moto)."""

from __future__ import annotations

import random

import pytest

from tests.support.commands import git, mlx
from tests.support.faultproxy import FaultProxy
from tests.support.repos import assert_pointer, clone, commit_all
from tests.support.s3 import S3Setup, make_s3_repo

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pd = pytest.importorskip("pandas")
fsspec = pytest.importorskip("fsspec")

SKIP = {"GIT_MLX_SKIP_SMUDGE": "1"}
ROWS = 4000


def table(seed: int):
    rng = random.Random(seed)
    return pa.table({name: [rng.randbytes(128).hex() for _ in range(ROWS)] for name in ("a", "b", "c", "d")})


@pytest.fixture
def skip_smudge_clone(s3: S3Setup, sealed):
    """A clone without content of a repository whose data.parquet changed after tag v1."""
    repos = make_s3_repo(sealed.root, s3.url(), s3.endpoint)
    mlx("track", "*.parquet", cwd=repos.work)
    path = repos.work / "data.parquet"
    pq.write_table(table(1), path, compression="none")
    commit_all(repos.work, "v1")
    git("tag", "v1", cwd=repos.work)
    size = path.stat().st_size
    pq.write_table(table(2), path, compression="none")
    commit_all(repos.work, "v2")
    git("push", "-q", "origin", "main", "v1", cwd=repos.work)
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env=SKIP)
    assert_pointer(dest, "data.parquet")
    return dest, size


def test_read_parquet_at_an_older_revision_fetches_only_the_columns_it_reads(
    s3: S3Setup, skip_smudge_clone, monkeypatch
) -> None:
    dest, size = skip_smudge_clone
    with FaultProxy(s3.host_port) as counter:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", counter.url)
        frame = pd.read_parquet(f"gitmlx://data.parquet?rev=v1&repo={dest}", columns=["b"])

    assert frame["b"].tolist() == table(1).column("b").to_pylist()
    assert 0 < counter.stats.received_bytes < size / 2, (counter.stats.received_bytes, size)


def test_the_filesystem_lists_opens_and_serves_pyarrow_datasets(s3: S3Setup, skip_smudge_clone) -> None:
    import pyarrow.dataset as ds

    dest, size = skip_smudge_clone
    fs = fsspec.filesystem("gitmlx", repo=str(dest), rev="v1")

    listed = {entry["name"]: entry for entry in fs.ls("")}
    assert listed["data.parquet"]["size"] == size  # the artifact's size, not its pointer's
    assert fs.info("data.parquet")["type"] == "file" and not fs.exists("missing.parquet")
    with fsspec.open(f"gitmlx://data.parquet?rev=v1&repo={dest}") as f:
        assert f.read(4) == b"PAR1"
    rows = ds.dataset("data.parquet", filesystem=fs, format="parquet").to_table(columns=["a"])
    assert rows.column("a").to_pylist() == table(1).column("a").to_pylist()
    with pytest.raises(NotImplementedError):
        fs.open("data.parquet", "wb")
