"""download.fetch_batch: many small objects with one remote read per run of adjacent
objects in a pack, each verified on its own; whatever goes wrong stays with the object it
concerns, and `done` hears once about every pointer."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from gitmlx.errors import IntegrityError, ObjectNotFound
from gitmlx.format import layout
from gitmlx.format.manifest import decode
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.transfer.batch import BATCH_BELOW, BATCH_BYTES, BATCH_OBJECTS, batches, fetch_batch
from gitmlx.transfer.common import index_for
from gitmlx.transfer.download import download
from gitmlx.transfer.upload import upload
from tests.support.remote_layout import delete_manifest, new_process, read_manifest_bytes


class CountingRemote(LocalRemote):
    """A directory remote that counts the reads of pack bytes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pack_reads = 0

    def get(self, key, sink, offset=0, progress=None, length=None):  # type: ignore[override]
        if key.startswith("packs/"):
            self.pack_reads += 1
        super().get(key, sink, offset, progress, length)


def pushed(tmp_path: Path, contents: list[bytes]) -> tuple[CountingRemote, list[Pointer]]:
    """A remote holding `contents`, pushed together from a store of their own."""
    source = Store(tmp_path / "source")
    pointers = [source.insert_stream(_stream(c)) for c in contents]
    source.sync()
    remote = CountingRemote(tmp_path / "remote")
    result = upload(source, remote, pointers)
    assert result.ok, result.failed
    new_process()  # the downloads below are another process's
    return remote, pointers


def _stream(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def fetched(store: Store, remote: LocalRemote, pointers: list[Pointer]) -> dict[Pointer, BaseException | None]:
    outcome: dict[Pointer, BaseException | None] = {}

    def done(pointer: Pointer, failure: BaseException | None) -> None:
        assert pointer not in outcome, f"{pointer.short_oid} reported twice"
        outcome[pointer] = failure

    index = index_for(store)
    try:
        fetch_batch(store, remote, index, pointers, done)
    finally:
        index.close()
        store.sync()
    assert set(outcome) == set(pointers), "every pointer is reported once"
    return outcome


def read(store: Store, pointer: Pointer) -> bytes:
    with store.open(pointer.oid) as f:
        return f.read()


def pack_file(remote: LocalRemote, pointer: Pointer) -> tuple[Path, int, int]:
    """The remote pack file holding `pointer`'s bytes, and where (start, end)."""
    manifest = decode(read_manifest_bytes(remote.root, pointer.oid), pointer)
    chunks = manifest.chunks
    return remote.root / layout.pack_key(chunks[0].pack), chunks[0].offset, chunks[-1].offset + chunks[-1].stored


def contents(n: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(1, 300_000)) for _ in range(n)]


def test_objects_pushed_together_come_back_exact_in_few_reads(tmp_path: Path, store: Store) -> None:
    data = contents(40)
    remote, pointers = pushed(tmp_path, data)

    outcome = fetched(store, remote, pointers)

    assert all(failure is None for failure in outcome.values()), outcome
    assert [read(store, p) for p in pointers] == data
    assert remote.pack_reads < len(pointers) // 4, f"{remote.pack_reads} reads for {len(pointers)} objects"


def test_a_batch_of_every_other_object_skips_the_gaps(tmp_path: Path, store: Store) -> None:
    data = contents(30, seed=1)
    remote, pointers = pushed(tmp_path, data)

    wanted = pointers[::2]
    outcome = fetched(store, remote, wanted)

    assert all(failure is None for failure in outcome.values()), outcome
    assert [read(store, p) for p in wanted] == data[::2]
    assert not any(store.has(p.oid) for p in pointers[1::2]), "objects nobody asked for are not stored"


def test_a_damaged_object_fails_alone_and_is_never_stored(tmp_path: Path, store: Store) -> None:
    data = contents(12, seed=2)
    remote, pointers = pushed(tmp_path, data)
    path, start, end = pack_file(remote, pointers[5])
    with open(path, "r+b") as f:
        f.seek((start + end) // 2)
        byte = f.read(1)
        f.seek((start + end) // 2)
        f.write(bytes([byte[0] ^ 0xFF]))

    outcome = fetched(store, remote, pointers)

    assert isinstance(outcome[pointers[5]], IntegrityError)
    assert not store.has(pointers[5].oid)
    for i, p in enumerate(pointers):
        if i != 5:
            assert outcome[p] is None, (i, outcome[p])
            assert read(store, p) == data[i]


def test_a_missing_manifest_fails_that_object_only(tmp_path: Path, store: Store) -> None:
    data = contents(8, seed=3)
    remote, pointers = pushed(tmp_path, data)
    delete_manifest(remote.root, pointers[3].oid)

    outcome = fetched(store, remote, pointers)

    assert isinstance(outcome[pointers[3]], ObjectNotFound)
    assert [outcome[p] is None for p in pointers] == [i != 3 for i in range(8)]


def test_a_truncated_pack_fails_the_objects_past_its_end_each_with_its_own_error(tmp_path: Path, store: Store) -> None:
    data = contents(10, seed=4)
    remote, pointers = pushed(tmp_path, data)
    path, start, _ = pack_file(remote, pointers[6])
    beyond = {p for p in pointers if pack_file(remote, p)[0] == path and pack_file(remote, p)[2] > start + 10}
    with open(path, "r+b") as f:
        f.truncate(start + 10)

    outcome = fetched(store, remote, pointers)

    assert pointers[6] in beyond
    for i, p in enumerate(pointers):
        if p in beyond:
            assert isinstance(outcome[p], IntegrityError), (i, outcome[p])
            assert not store.has(p.oid)
        else:
            assert outcome[p] is None and read(store, p) == data[i]


def test_a_pack_that_is_gone_fails_the_objects_in_it(tmp_path: Path, store: Store) -> None:
    data = contents(12, seed=5)
    remote, pointers = pushed(tmp_path, data)
    gone = pack_file(remote, pointers[0])[0]
    inside = [pack_file(remote, p)[0] == gone for p in pointers]
    gone.unlink()

    outcome = fetched(store, remote, pointers)

    for p, lost in zip(pointers, inside, strict=True):
        assert isinstance(outcome[p], ObjectNotFound) if lost else outcome[p] is None
        assert store.has(p.oid) is not lost


def test_an_object_sharing_chunks_with_another_is_rebuilt_too(tmp_path: Path, store: Store) -> None:
    rng = random.Random(6)
    shared = rng.randbytes(400_000)
    data = [shared, rng.randbytes(1000) + shared, shared + rng.randbytes(1000)]
    remote, pointers = pushed(tmp_path, data)

    outcome = fetched(store, remote, pointers)

    assert all(f is None for f in outcome.values()), outcome
    assert [read(store, p) for p in pointers] == data


def test_a_pointer_lying_about_the_size_fails_and_the_true_one_is_fetched(tmp_path: Path, store: Store) -> None:
    data = contents(3, seed=7)
    remote, pointers = pushed(tmp_path, data)
    liar = Pointer(pointers[1].oid, pointers[1].size + 1)

    outcome = fetched(store, remote, [*pointers, liar])

    assert outcome[liar] is not None
    assert all(outcome[p] is None for p in pointers)
    assert read(store, pointers[1]) == data[1]


def test_batches_keep_order_and_leave_large_objects_alone() -> None:
    small = [Pointer(f"{i:064x}", 1000) for i in range(BATCH_OBJECTS + 5)]
    large = Pointer("f" * 64, BATCH_BELOW)
    groups, alone = batches([*small[:3], large, *small[3:]])

    assert alone == [large]
    assert [p for g in groups for p in g] == small
    assert [len(g) for g in groups] == [BATCH_OBJECTS, 5]


def test_batches_split_by_bytes() -> None:
    pointers = [Pointer(f"{i:064x}", BATCH_BELOW - 1) for i in range(20)]
    groups, _ = batches(pointers)
    assert all(sum(p.size for p in g) <= BATCH_BYTES for g in groups)
    assert len(groups) > 1


@pytest.mark.parametrize("concurrency", [1, 4])
def test_download_fetches_small_and_large_objects_alike(tmp_path: Path, store: Store, concurrency: int) -> None:
    rng = random.Random(8)
    data = [*contents(20, seed=9), rng.randbytes(BATCH_BELOW + 5)]
    remote, pointers = pushed(tmp_path, data)
    delete_manifest(remote.root, pointers[2].oid)
    done: list[Pointer] = []

    result = download(store, remote, pointers, concurrency=concurrency, file_done=done.append)

    assert sorted(p.oid for p in done) == sorted(p.oid for p in pointers)
    assert set(result.failed) == {pointers[2].oid}
    assert {p.oid for p in result.moved} == {p.oid for i, p in enumerate(pointers) if i != 2}
    assert result.wire_bytes > sum(p.size for p in result.moved) * 0.9
    assert all(read(store, p) == data[i] for i, p in enumerate(pointers) if i != 2)
