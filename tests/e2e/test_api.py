"""The Python API (issue 8, acceptance 1 and 2): artifacts at any revision without a
checkout, from the local store or lazily from the remote, never wrong bytes.

Repositories are made and pushed with the real `git` and `git-mlx`; the API runs in this
process, in the sealed environment (its HOME, caches and git config are the test's).
"""

from __future__ import annotations

import json
import os
import random
import stat
import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import gitmlx
from gitmlx.errors import IntegrityError, MlxError
from gitmlx.remotes import by_url as remotes
from tests.support.commands import git, mlx, run
from tests.support.content import sha, sha256_file, write_random
from tests.support.repos import (
    assert_clean_worktree,
    assert_pointer,
    clone,
    commit_all,
    local_store,
    make_repo_with_bare_remote,
)
from tests.support.stores import assert_local_object, object_layout, object_path, remove_local_object, stored_oids

MIB = 1024 * 1024


# --- local repository ------------------------------------------------------------------


@pytest.fixture
def two_versions(sealed) -> tuple[Path, Path, str, str]:
    """`work` at v2 with 'model.bin' and 'notes.txt' changed since tag v1; pushed."""
    repos = make_repo_with_bare_remote(sealed.root)
    v1 = write_random(repos.work / "model.bin", 3 * MIB + 17, "v1")
    (repos.work / "notes.txt").write_text("first\n")
    commit_all(repos.work, "v1")
    git("tag", "v1", cwd=repos.work)
    v2 = write_random(repos.work / "model.bin", 2 * MIB, "v2")
    (repos.work / "notes.txt").write_text("second\n")
    commit_all(repos.work, "v2")
    git("push", "-q", "origin", "main", "--tags", cwd=repos.work)
    return repos.work, repos.remote, v1, v2


def test_open_at_v1_returns_v1_bytes_while_the_work_tree_is_at_v2(two_versions) -> None:
    work, _remote, v1, v2 = two_versions
    with gitmlx.open("model.bin", rev="v1", repo=work) as f:
        assert f.origin == "store" and f.pointer is not None and f.pointer.oid == v1
        data = f.read()
        assert f.verified
    assert sha(data) == v1 and len(data) == 3 * MIB + 17
    assert sha(gitmlx.open("model.bin", repo=work).read()) == v2  # rev defaults to HEAD
    assert sha256_file(work / "model.bin") == v2  # the work tree is untouched
    assert_clean_worktree(work)


def test_plain_git_content_is_served_as_it_is(two_versions) -> None:
    work, *_ = two_versions
    with gitmlx.open("notes.txt", rev="v1", repo=work) as f:
        assert f.read() == b"first\n" and f.pointer is None and f.origin == "git"
    assert gitmlx.read_range("notes.txt", 1, 3, rev="HEAD", repo=work) == b"eco"


def test_pointer_text_outside_tracked_files_is_served_as_it_is(two_versions) -> None:
    """Pointer text in a path without filter=mlx, or as a symlink's target, is ordinary
    content, as it is for git: the API must not swap in the object it names."""
    work, _remote, _v1, v2 = two_versions
    text = git("cat-file", "blob", "HEAD:model.bin", cwd=work).stdout.encode()
    (work / "docs").mkdir()
    (work / "docs" / "pointer-example.txt").write_bytes(text)
    os.symlink(text.decode(), work / "odd.bin")  # *.bin has filter=mlx, but it is a symlink
    commit_all(work, "examples")

    for name in ("docs/pointer-example.txt", "odd.bin"):
        with gitmlx.open(name, repo=work) as f:
            assert f.read() == text and f.pointer is None and f.origin == "git", name
    with gitmlx.open("model.bin", repo=work) as f:  # the real artifact still is one
        assert f.pointer is not None and f.pointer.oid == v2


def test_read_range_and_seek_from_the_local_store(two_versions) -> None:
    work, _remote, v1, _v2 = two_versions
    whole = gitmlx.open("model.bin", rev="v1", repo=work).read()
    assert gitmlx.read_range("model.bin", 1000, 5000, rev="v1", repo=work) == whole[1000:6000]
    assert gitmlx.read_range("model.bin", len(whole) - 3, 100, rev="v1", repo=work) == whole[-3:]
    with gitmlx.open(work / "model.bin", rev="v1", repo=work) as f:  # an absolute path works too
        f.seek(-10, os.SEEK_END)
        assert f.read() == whole[-10:]


def test_fetch_path_returns_the_read_only_store_object(two_versions) -> None:
    work, _remote, v1, _v2 = two_versions
    assert object_layout(work, v1) == "loose"  # 3 MiB: a loose object, its own file
    path = gitmlx.fetch_path("model.bin", rev="v1", repo=work)
    assert path == object_path(local_store(work), v1)
    assert sha256_file(path) == v1
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_fetch_path_of_a_packed_object_gives_it_a_read_only_loose_file(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root)
    shas = {name: write_random(repos.work / name, 5000, name) for name in ("a.bin", "b.bin")}
    commit_all(repos.work)
    assert object_layout(repos.work, shas["a.bin"]) == "packed"  # small, stored with b.bin

    path = gitmlx.fetch_path("a.bin", repo=repos.work)

    assert path == object_path(local_store(repos.work), shas["a.bin"])
    assert sha256_file(path) == shas["a.bin"]
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert object_layout(repos.work, shas["a.bin"]) == "loose+packed"
    assert_local_object(repos.work, shas["a.bin"], 5000)  # both copies good


def test_an_object_missing_from_the_store_is_read_from_the_remote(two_versions) -> None:
    work, _remote, v1, _v2 = two_versions
    remove_local_object(work, v1)
    with gitmlx.open("model.bin", rev="v1", repo=work) as f:
        assert f.origin == "remote"
        f.seek(MIB)
        part = f.read(1000)
        f.seek(0)
        data = f.read()
        assert f.verified
    assert sha(data) == v1 and part == data[MIB : MIB + 1000]
    assert v1 not in stored_oids(local_store(work))  # open() never writes the store
    path = gitmlx.fetch_path("model.bin", rev="v1", repo=work)  # fetch_path does
    assert sha256_file(path) == v1 and v1 in stored_oids(local_store(work))


def test_a_bare_repository_or_url_is_mirrored_under_the_cache(two_versions, sealed) -> None:
    _work, remote, v1, v2 = two_versions
    git("config", "uploadpack.allowFilter", "true", cwd=remote)  # so file:// clones can be blob-less
    for repo in (remote, remote.as_uri()):
        assert sha(gitmlx.open("model.bin", rev="v1", repo=repo).read()) == v1
        assert sha(gitmlx.open("model.bin", repo=str(repo)).read()) == v2
    mirrors = list((sealed.home / ".cache" / "gitmlx" / "repos").iterdir())
    assert len(mirrors) == 2 and all((m / "HEAD").is_file() for m in mirrors)
    # The file:// mirror is a partial clone: blobs never read (notes.txt) were not fetched.
    # (git ignores --filter for a clone from a local path: that one has every blob.)
    missing = [git("rev-list", "--objects", "--all", "--missing=print", cwd=m).stdout.count("\n?") for m in mirrors]
    assert sorted(missing)[0] == 0 and sorted(missing)[1] >= 2, missing
    assert not (remote / "mlx" / "objects").exists(), "nothing may be written inside the bare repository"


def test_missing_path_revision_and_directory_are_clear_errors(two_versions) -> None:
    work, *_ = two_versions
    with pytest.raises(MlxError, match="'nope.bin' does not exist at 'v1'"):
        gitmlx.open("nope.bin", rev="v1", repo=work)
    with pytest.raises(MlxError, match="revision 'v9' not found"):
        gitmlx.open("model.bin", rev="v9", repo=work)
    (work / "sub").mkdir()
    (work / "sub" / "a.txt").write_text("a")
    commit_all(work, "sub")
    with pytest.raises(MlxError, match="is a directory"):
        gitmlx.open("sub", repo=work)
    with pytest.raises(MlxError, match="invalid path"):
        gitmlx.open("../model.bin", repo=work)


def test_the_api_imports_neither_click_tqdm_nor_boto3_for_local_reads(two_versions) -> None:
    work, *_ = two_versions
    code = (
        "import sys, gitmlx\n"
        "assert 'gitmlx.api.artifacts' not in sys.modules  # import gitmlx stays cheap\n"
        "gitmlx.open('model.bin', rev='v1').read(10)\n"
        "gitmlx.read_range('model.bin', 5, 5)\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded & {'click', 'tqdm', 'boto3', 'botocore'}, loaded\n"
    )
    run([sys.executable, "-c", code], work)


# --- S3 --------------------------------------------------------------------------------


def _s3_repo(root: Path, bucket: str, endpoint: str, prefix: str = "team/models"):
    repos = make_repo_with_bare_remote(root, patterns=("*.bin", "*.safetensors"))
    mlx("remote", "set", f"s3://{bucket}/{prefix}", "--endpoint-url", endpoint, cwd=repos.work)
    git("add", ".mlxconfig", cwd=repos.work)
    git("commit", "-q", "-m", "artifact remote on S3", cwd=repos.work)
    return repos


def _skip_smudge_clone(bare: Path, dest: Path) -> Path:
    clone(bare, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    assert not stored_oids(local_store(dest)), "the clone's store should start empty"
    return dest


def test_open_on_a_skip_smudge_clone_fetches_from_s3(s3_env, sealed, s3_endpoint, s3_bucket) -> None:
    repos = _s3_repo(sealed.root, s3_bucket, s3_endpoint)
    v1 = write_random(repos.work / "model.bin", 5 * MIB + 3, "s3-v1")
    commit_all(repos.work, "v1")
    git("tag", "v1", cwd=repos.work)
    write_random(repos.work / "model.bin", MIB, "s3-v2")
    commit_all(repos.work, "v2")
    git("push", "-q", "origin", "main", "--tags", cwd=repos.work)
    assert not (repos.remote / "mlx").exists(), "artifacts went beside the git remote, not to S3"

    ci = _skip_smudge_clone(repos.remote, sealed.root / "ci")
    assert_pointer(ci, "model.bin")
    with gitmlx.open("model.bin", rev="v1", repo=ci) as f:
        assert f.origin == "remote"
        data = f.read()
        assert f.verified and f.wire_bytes >= len(data)
    assert sha(data) == v1
    assert not stored_oids(local_store(ci)), "open() must not fill the store"
    assert_clean_worktree(ci)


def _corrupt_one_pack(admin, bucket: str, prefix: str) -> str:
    packs = [
        o["Key"]
        for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/packs/")
        for o in page.get("Contents", [])
    ]
    assert len(packs) == 1, packs
    body = bytearray(admin.get_object(Bucket=bucket, Key=packs[0])["Body"].read())
    middle = len(body) // 2
    body[middle : middle + 16] = bytes(b ^ 0xFF for b in body[middle : middle + 16])
    admin.put_object(Bucket=bucket, Key=packs[0], Body=bytes(body))
    return packs[0]


def test_a_corrupted_remote_pack_raises_and_never_returns_wrong_bytes(
    s3_env, sealed, s3_endpoint, s3_bucket, s3_admin
) -> None:
    repos = _s3_repo(sealed.root, s3_bucket, s3_endpoint)
    oid = write_random(repos.work / "model.bin", 4 * MIB, "corrupt")
    commit_all(repos.work, "model")
    git("push", "-q", "origin", "main", cwd=repos.work)
    _corrupt_one_pack(s3_admin, s3_bucket, "team/models")
    ci = _skip_smudge_clone(repos.remote, sealed.root / "ci")

    with gitmlx.open("model.bin", repo=ci) as f, pytest.raises(IntegrityError) as caught:
        f.read()
    message = caught.value.message
    assert "'model.bin' at 'HEAD'" in message and "failed verification" in message
    assert f"s3://{s3_bucket}/team/models" in message and caught.value.hint
    with pytest.raises(IntegrityError):
        gitmlx.read_range("model.bin", 2 * MIB - 100, 200, repo=ci)  # the damaged middle
    with pytest.raises(IntegrityError):
        gitmlx.fetch_path("model.bin", repo=ci)
    assert oid not in stored_oids(local_store(ci))
    # Bytes far from the damage still read, each chunk verified.
    expected = (sealed.root / "work" / "model.bin").read_bytes()[:1000]
    assert gitmlx.read_range("model.bin", 0, 1000, repo=ci) == expected


# --- acceptance 2: one tensor of a big safetensors file, from S3 -------------------------


def _tensor_bytes(name: str, size: int) -> bytes:
    return random.Random(name).randbytes(size)


def write_safetensors(path: Path, tensors: list[tuple[str, int]], shape_of) -> None:
    """A safetensors file written by streaming: 8-byte header length, JSON header, data.

    `tensors` are (name, byte size) of F32 tensors whose data is `_tensor_bytes(name, size)`.
    """
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, size in tensors:
        header[name] = {"dtype": "F32", "shape": shape_of(size), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes with spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name, size in tensors:
            f.write(_tensor_bytes(name, size))


class CountingRemote:
    """Wraps a Remote and counts the bytes its ranged reads deliver into sinks."""

    def __init__(self, inner, counter: list[int]) -> None:
        self._inner, self._counter = inner, counter

    def get(self, key, sink, offset=0, progress=None, length=None) -> None:
        counter = self._counter

        class Sink:
            def write(self, data) -> None:
                counter[0] += len(data)
                sink.write(data)

        self._inner.get(key, Sink(), offset, progress, length)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        data = self._inner.read_range(key, start, length)
        self._counter[0] += len(data)
        return data

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Bytes downloaded by every remote this process opens from now on."""
    counter = [0]
    real = remotes.open_remote

    def counting(url, options=None):
        return CountingRemote(real(url, options), counter)

    monkeypatch.setattr(remotes, "open_remote", counting)  # RepoContext imports it from there on first use
    yield counter


def _one_tensor_from_s3(sealed, s3_endpoint: str, s3_bucket: str, counted: list[int], total: int, via_url: bool):
    np = pytest.importorskip("numpy")
    tensor = 2 * MIB
    count = total // tensor
    names = [(f"layers.{i}.weight", tensor) for i in range(count)]
    repos = _s3_repo(sealed.root, s3_bucket, s3_endpoint)
    write_safetensors(repos.work / "model.safetensors", names, lambda size: [size // 4096, 1024])
    commit_all(repos.work, "model")
    git("push", "-q", "origin", "main", cwd=repos.work)
    if via_url:
        repo: str | Path = repos.remote.as_uri()
    else:
        repo = _skip_smudge_clone(repos.remote, sealed.root / "ci")
    wanted = f"layers.{count // 2 + 1}.weight"

    counted[0] = 0
    got = gitmlx.load_tensors("model.safetensors", [wanted], repo=repo)
    downloaded = counted[0]

    assert list(got) == [wanted]
    array = got[wanted]
    assert array.dtype == np.float32 and array.shape == (tensor // 4096, 1024)
    assert array.tobytes() == _tensor_bytes(wanted, tensor)
    print(f"\nload_tensors: one 2 MiB tensor of a {total // MIB} MiB safetensors file: {downloaded} bytes downloaded")
    assert tensor <= downloaded < 8 * MIB, f"downloaded {downloaded} bytes"
    if not via_url:
        assert not stored_oids(local_store(repo))


def test_load_one_tensor_of_a_64_mib_file_downloads_under_8_mib(
    s3_env, sealed, s3_endpoint, s3_bucket, counted
) -> None:
    _one_tensor_from_s3(sealed, s3_endpoint, s3_bucket, counted, 64 * MIB, via_url=False)


def test_load_one_tensor_through_a_url_mirror(s3_env, sealed, s3_endpoint, s3_bucket, counted) -> None:
    _one_tensor_from_s3(sealed, s3_endpoint, s3_bucket, counted, 16 * MIB, via_url=True)


@pytest.mark.slow
def test_load_one_tensor_of_a_512_mib_file_downloads_under_8_mib(
    s3_env, sealed, s3_endpoint, s3_bucket, counted
) -> None:
    _one_tensor_from_s3(sealed, s3_endpoint, s3_bucket, counted, 512 * MIB, via_url=False)
