"""The one remote contract: every backend passes these tests unchanged.

Each test gets `remote` (or `make_remote` for several remotes side by side) once per
backend: a local directory under tmp_path, and S3 on the session's moto server with a fresh
bucket. S3 remotes use 5 MiB multipart parts so a 20 MiB object takes the multipart path.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from gitmlx.errors import ObjectNotFound, RemoteError
from gitmlx.remotes.base import Remote, RemoteEntry, RemoteOptions
from gitmlx.remotes.by_url import open_remote
from tests.support.content import Sink

MiB = 1024 * 1024
MakeRemote = Callable[[str], Remote]


@pytest.fixture(params=["local", "s3"])
def make_remote(request: pytest.FixtureRequest, tmp_path: Path) -> MakeRemote:
    """Remotes at different places (`sub`) of one backend."""
    if request.param == "local":
        return lambda sub: open_remote(str(tmp_path / "remote" / sub))
    bucket = request.getfixturevalue("s3_bucket")
    endpoint = request.getfixturevalue("s3_endpoint")

    def make(sub: str) -> Remote:
        remote = open_remote(f"s3://{bucket}/{sub}", RemoteOptions(endpoint_url=endpoint))
        remote.multipart_threshold = remote.multipart_chunksize = 5 * MiB  # type: ignore[attr-defined]
        return remote

    return make


@pytest.fixture
def remote(make_remote: MakeRemote) -> Remote:
    return make_remote("artifacts")


def write_file(path: Path, size: int, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    data = rng.randbytes(size)
    path.write_bytes(data)
    return data


@pytest.fixture
def stored(remote: Remote, tmp_path: Path) -> bytes:
    """A 100,000-byte object stored under `objects/ab/cd/obj`."""
    data = write_file(tmp_path / "src", 100_000)
    remote.put_file("objects/ab/cd/obj", tmp_path / "src")
    return data


def test_put_then_exists_size_and_get_return_the_object(remote: Remote, stored: bytes) -> None:
    assert remote.exists("objects/ab/cd/obj")
    assert remote.size("objects/ab/cd/obj") == len(stored)
    sink = Sink()
    remote.get("objects/ab/cd/obj", sink)
    assert sink.data == stored


def test_put_consuming_the_file_stores_it_and_keeps_other_objects(
    remote: Remote, stored: bytes, tmp_path: Path
) -> None:
    data = write_file(tmp_path / "moved", 300_000, seed=3)
    remote.put_file("packs/ab/moved.pack", tmp_path / "moved", consume=True)
    sink = Sink()
    remote.get("packs/ab/moved.pack", sink)
    assert sink.data == data
    assert remote.size("objects/ab/cd/obj") == len(stored)
    assert not [e.key for e in remote.list("tmp/")], "a consumed put left a temporary object"


@pytest.mark.parametrize(("offset", "length"), [(0, 10), (5, 1000), (99_990, 10), (99_990, 100)])
def test_get_with_length_streams_only_that_range(remote: Remote, stored: bytes, offset: int, length: int) -> None:
    sink = Sink()
    remote.get("objects/ab/cd/obj", sink, offset, None, length)
    assert sink.data == stored[offset : offset + length]


def test_missing_object_does_not_exist_and_has_no_size(remote: Remote) -> None:
    assert not remote.exists("objects/00/00/missing")
    assert remote.size("objects/00/00/missing") is None


def test_empty_file_round_trips(remote: Remote, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    remote.put_file("empty", tmp_path / "empty")
    assert remote.size("empty") == 0
    sink = Sink()
    remote.get("empty", sink)
    assert sink.data == b""


@pytest.mark.parametrize("offset", [1, 99_999, 100_000, 100_001])
def test_get_from_offset_streams_the_rest(remote: Remote, stored: bytes, offset: int) -> None:
    sink = Sink()
    remote.get("objects/ab/cd/obj", sink, offset=offset)
    assert sink.data == stored[offset:]


@pytest.mark.parametrize(
    ("start", "length"), [(0, 10), (500, 1000), (99_990, 10), (99_990, 50), (100_000, 5), (10**9, 1)]
)
def test_read_range_returns_the_bytes_and_fewer_only_at_the_end(
    remote: Remote, stored: bytes, start: int, length: int
) -> None:
    assert remote.read_range("objects/ab/cd/obj", start, length) == stored[start : start + length]


def test_read_range_of_zero_bytes_is_empty(remote: Remote, stored: bytes) -> None:
    assert remote.read_range("objects/ab/cd/obj", 10, 0) == b""


def test_missing_object_raises_object_not_found(remote: Remote) -> None:
    with pytest.raises(ObjectNotFound, match="missing"):
        remote.get("objects/00/00/missing", Sink())
    with pytest.raises(ObjectNotFound, match="missing"):
        remote.get("objects/00/00/missing", Sink(), offset=5)
    with pytest.raises(ObjectNotFound, match="missing"):
        remote.read_range("objects/00/00/missing", 0, 10)
    with pytest.raises(ObjectNotFound, match="missing"):
        remote.read_range("objects/00/00/missing", 0, 0)


def test_list_yields_relative_keys_with_sizes_filtered_by_prefix(remote: Remote, tmp_path: Path) -> None:
    assert list(remote.list()) == []
    for i, key in enumerate(["objects/aa/01/x", "objects/ab/02/y", "other/z"]):
        write_file(tmp_path / "src", 10 + i, seed=i)
        remote.put_file(key, tmp_path / "src")
    assert sorted(remote.list(), key=lambda e: e.key) == [
        RemoteEntry("objects/aa/01/x", 10),
        RemoteEntry("objects/ab/02/y", 11),
        RemoteEntry("other/z", 12),
    ]
    assert sorted(e.key for e in remote.list("objects/")) == ["objects/aa/01/x", "objects/ab/02/y"]
    assert sorted(e.key for e in remote.list("objects/ab")) == ["objects/ab/02/y"]
    assert list(remote.list("nothing/")) == []


def test_remotes_at_neighbouring_places_do_not_see_each_other(make_remote: MakeRemote, tmp_path: Path) -> None:
    first, second = make_remote("team"), make_remote("team2")
    write_file(tmp_path / "src", 10)
    first.put_file("objects/k", tmp_path / "src")
    assert not second.exists("objects/k")
    assert list(second.list()) == []
    assert [e.key for e in first.list()] == ["objects/k"]


def test_delete_removes_the_object_and_a_missing_one_is_fine(remote: Remote, stored: bytes) -> None:
    remote.delete("objects/ab/cd/obj")
    assert not remote.exists("objects/ab/cd/obj")
    assert list(remote.list()) == []
    remote.delete("objects/ab/cd/obj")


UNSAFE_KEYS = ["", "/abs", "a//b", "../escape", "a/../../b", "a/./b", "a/", ".", "..", "a\\b", "a\0b"]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
def test_unsafe_keys_are_refused_by_every_operation(remote: Remote, tmp_path: Path, key: str) -> None:
    write_file(tmp_path / "src", 10)
    operations: list[Callable[[], object]] = [
        lambda: remote.exists(key),
        lambda: remote.size(key),
        lambda: remote.put_file(key, tmp_path / "src"),
        lambda: remote.get(key, Sink()),
        lambda: remote.read_range(key, 0, 1),
        lambda: remote.delete(key),
    ]
    for operation in operations:
        with pytest.raises(RemoteError, match="unsafe") as info:
            operation()
        assert not isinstance(info.value, ObjectNotFound)
    assert list(remote.list()) == []


class ReadFailed(Exception):
    pass


@pytest.mark.parametrize("size", [2 * MiB, 12 * MiB], ids=["single", "multipart"])
def test_put_that_fails_midway_leaves_no_object(remote: Remote, tmp_path: Path, size: int) -> None:
    write_file(tmp_path / "src", size)
    moved = 0

    def fail_after_a_while(n: int) -> None:
        nonlocal moved
        moved += n
        if moved > size // 3:
            raise ReadFailed

    with pytest.raises(ReadFailed):
        remote.put_file("objects/ab/cd/partial", tmp_path / "src", progress=fail_after_a_while)
    assert not remote.exists("objects/ab/cd/partial")
    assert list(remote.list()) == []


def test_large_object_streams_in_bounded_writes(remote: Remote, tmp_path: Path) -> None:
    size = 20 * MiB + 12_345
    data = write_file(tmp_path / "big", size, seed=7)
    uploaded: list[int] = []
    remote.put_file("objects/bi/g0/big", tmp_path / "big", progress=uploaded.append)
    assert sum(uploaded) == size
    assert remote.size("objects/bi/g0/big") == size

    digest, largest, downloaded = hashlib.sha256(), 0, []

    class HashingSink:
        def write(self, chunk: bytes | memoryview) -> None:
            nonlocal largest
            digest.update(chunk)
            largest = max(largest, len(chunk))

    remote.get("objects/bi/g0/big", HashingSink(), progress=downloaded.append)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    assert sum(downloaded) == size
    assert largest <= MiB
