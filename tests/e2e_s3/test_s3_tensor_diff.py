"""`git diff v1 v2` of a checkpoint on S3 that is not local (a skip-smudge clone) names
the changed tensors from the headers and manifests: the bytes the server sends, counted
at a loopback proxy in front of moto, stay far below the checkpoint's size.
"""

from __future__ import annotations

import random

import pytest

from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import GIB, MIB, write_safetensors
from tests.support.faultproxy import FaultProxy
from tests.support.repos import clone, commit_all
from tests.support.s3 import S3Setup, make_s3_repo

SKIP = {"GIT_MLX_SKIP_SMUDGE": "1"}


def lead(diff: str) -> list[str]:
    lines = diff.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("index "))
    stop = next((i for i, line in enumerate(lines) if line.startswith("--- ")), len(lines))
    return lines[start + 1 : stop]


def diff_through_counter(s3: S3Setup, sealed, tensors: dict[str, bytes], changes: dict[str, bytes], repeat: int):
    """Push v1 and v2 of model.safetensors, clone with skip-smudge, and diff v1 v2 with
    every S3 request going through a counting proxy: (lead lines, bytes sent, file size)."""
    repos = make_s3_repo(sealed.root, s3.url(), s3.endpoint)
    mlx("track", "*.safetensors", cwd=repos.work)
    model = repos.work / "model.safetensors"
    write_safetensors(model, tensors, repeat)
    commit_all(repos.work, "v1")
    git("tag", "v1", cwd=repos.work)
    write_safetensors(model, {**tensors, **changes}, repeat)
    commit_all(repos.work, "v2")
    git("tag", "v2", cwd=repos.work)
    size = model.stat().st_size
    git("push", "-q", "origin", "main", "v1", "v2", cwd=repos.work)
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env=SKIP)
    with FaultProxy(s3.host_port) as counter:
        result = git(
            "diff", "v1", "v2", "--", "model.safetensors", cwd=dest, env={**SKIP, "AWS_ENDPOINT_URL_S3": counter.url}
        )
    assert_no_traceback(result)
    assert counter.stats.requests > 0, "the diff never asked the server"
    return lead(result.stdout), counter.stats.received_bytes, size, dest


def random_tensors(count: int, size: int, seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"layers.{i}.weight": rng.randbytes(size) for i in range(count)}


def test_diff_of_a_checkpoint_not_local_names_the_changed_tensors_reading_a_fraction(s3: S3Setup, sealed) -> None:
    tensors = random_tensors(16, 1 * MIB, seed=1)
    changes = {"layers.3.weight": random.Random(2).randbytes(MIB), "layers.11.weight": random.Random(3).randbytes(MIB)}

    lines, sent, size, dest = diff_through_counter(s3, sealed, tensors, changes, repeat=1)

    names = ["changed layers.11.weight  U8 [1048576]", "changed layers.3.weight  U8 [1048576]"]
    assert lines[0].startswith("tensors: 16 \u2192 16 (+0 \u22120 ~2 changed;"), lines
    assert lines[1:] == names
    assert sent < size / 4, f"{sent} bytes fetched for a diff of a {size}-byte checkpoint"

    # With the new side local (the work tree after a pull), its bytes are hashed against
    # the old side's chunk hashes: still only a few chunks come from the server.
    mlx("pull", cwd=dest)
    with FaultProxy(s3.host_port) as counter:
        env = {**SKIP, "AWS_ENDPOINT_URL_S3": counter.url}
        result = git("diff", "v1", "--", "model.safetensors", cwd=dest, env=env)
    assert lead(result.stdout)[1:] == names, result.stdout
    assert 0 < counter.stats.received_bytes < size / 4


@pytest.mark.slow
def test_diff_of_a_1_gib_checkpoint_not_local_fetches_at_most_4_mib(s3: S3Setup, sealed) -> None:
    # 64 tensors of 16 MiB, each a 4 MiB random block written 4 times: 1 GiB that chunk
    # dedup stores as a few distinct megabytes.
    tensors = random_tensors(64, 4 * MIB, seed=4)
    changes = {"layers.40.weight": random.Random(5).randbytes(4 * MIB)}

    lines, sent, size, _ = diff_through_counter(s3, sealed, tensors, changes, repeat=4)

    assert size > GIB
    assert lines[0].startswith("tensors: 64 \u2192 64 (+0 \u22120 ~1 changed;"), lines
    assert lines[1:] == ["changed layers.40.weight  U8 [16777216]"]
    assert sent <= 4 * MIB, f"{sent} bytes fetched"
