"""gitmlx.transfer.upload and the chunk index when the remote lost packs the index still
names (wiped, restored from an older backup, collected): the push stores those chunks
again, in the same push, and never writes a manifest that names a missing pack.

A directory remote and a real store; no git.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from gitmlx.format import layout
from gitmlx.format.manifest import ChunkRef, decode
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.chunk_index import ChunkIndex
from gitmlx.store.objects import Store
from gitmlx.transfer.common import index_for
from gitmlx.transfer.download import download
from gitmlx.transfer.upload import upload
from tests.support.remote_layout import make_format_1, read_manifest_bytes


class CountingRemote(LocalRemote):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pack_checks: list[str] = []

    def exists(self, key: str) -> bool:
        if key.startswith(layout.PACKS_PREFIX):
            self.pack_checks.append(key)
        return super().exists(key)

    def size(self, key: str) -> int | None:
        if key.startswith(layout.PACKS_PREFIX):
            self.pack_checks.append(key)
        return super().size(key)


@pytest.fixture
def remote(tmp_path: Path) -> CountingRemote:
    return CountingRemote(tmp_path / "remote")


def add(store: Store, seed: str, size: int = 600_000, prefix: bytes = b"") -> tuple[Pointer, bytes]:
    data = prefix + random.Random(seed).randbytes(size)
    return store.insert_stream(io.BytesIO(data)), data


def push(store: Store, remote: LocalRemote, *pointers: Pointer) -> None:
    result = upload(store, remote, pointers, concurrency=2)
    assert result.ok, result.failed


def manifest_packs(remote: LocalRemote, pointer: Pointer) -> set[str]:
    return set(decode(read_manifest_bytes(remote.root, pointer.oid), pointer).packs())


def lose_everything(remote: LocalRemote) -> None:
    for kind in ("packs", "manifests", "shards"):
        for path in (remote.root / kind).rglob("*"):
            if path.is_file():
                path.chmod(0o644)
                path.unlink()


def fetched(tmp_path: Path, remote: LocalRemote, pointer: Pointer) -> bytes:
    fresh = Store(tmp_path / f"fresh-{pointer.oid[:8]}-{random.random()}")
    result = download(fresh, remote, [pointer], concurrency=1)
    assert result.ok, result.failed
    with fresh.open(pointer.oid) as f:
        return f.read()


def test_a_push_after_the_remote_lost_its_packs_uploads_them_again(
    store: Store, remote: CountingRemote, tmp_path: Path
) -> None:
    a, data = add(store, "a")
    push(store, remote, a)
    lose_everything(remote)

    push(store, remote, a)

    assert all(remote.exists(layout.pack_key(p)) for p in manifest_packs(remote, a))
    assert fetched(tmp_path, remote, a) == data


def test_chunks_shared_with_a_lost_pack_go_into_a_new_pack_of_the_same_push(
    store: Store, remote: CountingRemote, tmp_path: Path
) -> None:
    """b shares most chunks with a; a's pack is lost (a's manifest too). Pushing b finds the
    pack gone once, forgets it, and writes b's manifest naming only packs that exist."""
    a, data_a = add(store, "a")
    push(store, remote, a)
    [lost] = manifest_packs(remote, a)
    lose_everything(remote)
    b, data_b = add(store, "b", 100_000, prefix=data_a)
    remote.pack_checks.clear()

    push(store, remote, b)

    assert remote.pack_checks == [layout.pack_key(lost)], "one check per reused pack, not per chunk"
    assert all(remote.exists(layout.pack_key(p)) for p in manifest_packs(remote, b))
    assert fetched(tmp_path, remote, b) == data_b
    index = index_for(store)
    try:
        chunks = decode(read_manifest_bytes(remote.root, b.oid), b).chunks
        known = index.remote_chunks(remote.identity, [c.hash for c in chunks])
        assert {ref.pack for ref in known.values()} <= manifest_packs(remote, b)
    finally:
        index.close()


def test_a_pack_still_on_the_remote_is_reused_after_one_check(store: Store, remote: CountingRemote) -> None:
    a, data_a = add(store, "a")
    push(store, remote, a)
    [pack] = manifest_packs(remote, a)
    b, _ = add(store, "b", 100_000, prefix=data_a)
    remote.pack_checks.clear()

    push(store, remote, b)

    assert remote.pack_checks == [layout.pack_key(pack)]
    assert pack in manifest_packs(remote, b)


def ref(digest: int, pack: str) -> ChunkRef:
    return ChunkRef(bytes([digest]) * 32, pack, 0, 10, 10, 0)


def test_forget_remote_pack_drops_its_rows_for_that_remote_only(tmp_path: Path) -> None:
    lost, kept = "a" * 64, "b" * 64
    index = ChunkIndex(tmp_path / "index.sqlite")
    index.add_remote_chunks("r1", [ref(1, lost), ref(2, kept)])
    index.flush()  # one row in sqlite, one still buffered in memory
    index.add_remote_chunks("r1", [ref(3, lost)])
    index.add_remote_chunks("r2", [ref(1, lost)])

    index.forget_remote_pack("r1", lost)

    hashes = [bytes([n]) * 32 for n in (1, 2, 3)]
    assert set(index.remote_chunks("r1", hashes)) == {hashes[1]}
    assert index.remote_chunk("r2", hashes[0]) == ref(1, lost)
    index.close()
    reopened = ChunkIndex(tmp_path / "index.sqlite")
    assert set(reopened.remote_chunks("r1", hashes)) == {hashes[1]}
    reopened.close()


def test_a_file_where_a_manifest_folder_goes_is_no_manifest(store: Store, remote: CountingRemote) -> None:
    """As `exists` says: a directory remote answers 'not found', so the push goes on to
    upload (and then fails to write that one manifest, naming it). Format 1: manifest keys."""
    make_format_1(remote.root)
    a, _ = add(store, "a")
    blocker = remote.root / layout.manifest_key(a.oid)
    blocker.parent.parent.mkdir(parents=True)
    blocker.parent.write_bytes(b"")

    result = upload(store, remote, [a], concurrency=1)

    assert not remote.exists(layout.manifest_key(a.oid)) and remote.size(layout.manifest_key(a.oid)) is None
    assert list(result.failed) == [a.oid] and "cannot write" in result.failed[a.oid][1]
    assert list((remote.root / "packs").rglob("*.pack")), "the pack was uploaded first"


# --- solo packs: a large object whose chunks are all new and incompressible ----------------


@pytest.fixture
def solo_min(monkeypatch: pytest.MonkeyPatch) -> int:
    import importlib

    upload_module = importlib.import_module("gitmlx.transfer.packer")  # where the limits live
    monkeypatch.setattr(upload_module, "SOLO_MIN", 1_000_000)
    monkeypatch.setattr(upload_module, "PACK_TARGET", 1_000_000)  # else it would take 3 packs
    return 1_000_000


def pack_files(remote: LocalRemote) -> dict[str, bytes]:
    """Pack id -> bytes, for every pack on the remote."""
    found = {}
    for entry in remote.list(layout.PACKS_PREFIX):
        pack_id = Path(entry.key).name.removesuffix(".pack")
        assert layout.pack_key(pack_id) == entry.key
        found[pack_id] = (remote.root / entry.key).read_bytes()
    return found


def test_a_large_new_incompressible_object_is_its_own_pack(
    tmp_path: Path, store: Store, remote: CountingRemote, solo_min: int
) -> None:
    pointer, data = add(store, "big", 3_000_000)

    push(store, remote, pointer)

    assert pack_files(remote) == {pointer.oid: data}  # the object's bytes, named by its oid
    assert manifest_packs(remote, pointer) == {pointer.oid}
    assert fetched(tmp_path, remote, pointer) == data


def test_a_large_object_sharing_chunks_is_packed_as_usual(
    tmp_path: Path, store: Store, remote: CountingRemote, solo_min: int
) -> None:
    v1, data1 = add(store, "v1", 3_000_000)
    push(store, remote, v1)
    data2 = data1[:2_000_000] + random.Random("edit").randbytes(50_000) + data1[2_050_000:]
    v2 = store.insert_stream(io.BytesIO(data2))

    push(store, remote, v2)

    new_packs = set(pack_files(remote)) - {v1.oid}
    assert v1.oid in manifest_packs(remote, v2) and len(new_packs) == 1  # dedup against v1
    assert sum(len(b) for n, b in pack_files(remote).items() if n in new_packs) < 600_000
    assert fetched(tmp_path, remote, v2) == data2


def test_a_large_compressible_object_is_not_a_solo_pack(
    tmp_path: Path, store: Store, remote: CountingRemote, solo_min: int
) -> None:
    text = b"".join(b'{"step": %d, "loss": 0.%06d}\n' % (i, i * 7919 % 999_983) for i in range(100_000))
    pointer = store.insert_stream(io.BytesIO(text))

    push(store, remote, pointer)

    assert pointer.oid not in pack_files(remote)
    assert sum(len(b) for b in pack_files(remote).values()) < len(text) // 2
    assert fetched(tmp_path, remote, pointer) == text


def test_a_speculative_solo_copy_that_was_not_needed_is_left_for_gc(
    tmp_path: Path, store: Store, remote: CountingRemote, solo_min: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    monkeypatch.setattr(importlib.import_module("gitmlx.transfer.packer"), "SPECULATE_AFTER", 200_000)
    v1, data1 = add(store, "v1", 3_000_000)
    push(store, remote, v1)
    data2 = random.Random("new head").randbytes(1_500_000) + data1[1_500_000:]  # new first, known after
    v2 = store.insert_stream(io.BytesIO(data2))

    push(store, remote, v2)

    assert v1.oid in manifest_packs(remote, v2) and v2.oid not in manifest_packs(remote, v2)
    assert pack_files(remote)[v2.oid] == data2  # the copy started early: valid, named by no manifest
    assert fetched(tmp_path, remote, v2) == data2
