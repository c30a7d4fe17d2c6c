"""A clone from a directory remote fetches its small files in a worker process
(gitmlx/checkout/fetch_worker.py); whatever the worker does not store, the filter
fetches itself, so failures read as they always did."""

from __future__ import annotations

from gitmlx.checkout.fetch_worker import WorkerClient
from gitmlx.format.pointer import Pointer
from tests.support.commands import git
from tests.support.content import write_random
from tests.support.repos import Repos, assert_clean_worktree, assert_content, clone, commit_all, corrupt_remote_object


def _small_files(repos: Repos, count: int) -> dict[str, str]:
    shas = {f"f{i:03}.bin": write_random(repos.work / f"f{i:03}.bin", 3000 + i, f"w{i}") for i in range(count)}
    commit_all(repos.work, "small files")
    git("push", "-q", "origin", "main", cwd=repos.work)
    return shas


def test_a_clone_fetches_small_files_in_the_worker_process(repos: Repos, sealed) -> None:
    shas = _small_files(repos, 40)
    trace = sealed.root / "trace.log"
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env={"GIT_MLX_TRACE": str(trace)})
    for name, sha in shas.items():
        assert_content(dest, name, sha)
    assert_clean_worktree(dest)
    assert "batch of 40 objects: 40 stored" in trace.read_text()


def test_an_object_the_worker_cannot_store_fails_as_it_does_without_the_worker(repos: Repos, sealed) -> None:
    shas = _small_files(repos, 10)
    corrupt_remote_object(repos.remote, shas["f003.bin"])
    outputs = {}
    for key, env in (("worker", {}), ("threads", {"GIT_MLX_NO_FETCH_WORKER": "1"})):
        dest = sealed.root / f"clone-{key}"
        result = clone(repos.remote, dest, env=env, check=False)
        assert result.returncode != 0
        outputs[key] = [line for line in result.stderr.splitlines() if "f003.bin" in line or "object " in line]
        for name, sha in shas.items():
            if name != "f003.bin":
                assert_content(dest, name, sha)
    assert outputs["worker"] and outputs["worker"] == outputs["threads"]


def test_a_worker_that_cannot_run_stores_nothing(repos: Repos) -> None:
    client = WorkerClient(repos.work)
    client.ARGS = ("mlx", "no-such-command")  # ends at once, answering nothing
    assert client.fetch([Pointer("a" * 64, 3)]) == set()
    assert client._broken  # later batches go straight to the filter's own threads
    assert client.fetch([Pointer("b" * 64, 3)]) == set()
    client.close()
