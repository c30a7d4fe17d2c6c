"""gitmlx.store.packs and the store's use of it: small objects in one pack file per batch."""

from __future__ import annotations

import gc
import hashlib
import io
import os
import stat
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gitmlx.format.pointer import Pointer
from gitmlx.osutil import fastcopy
from gitmlx.store import appender as appender_module
from gitmlx.store import packs as store_packs
from gitmlx.store import packset as packset_module
from gitmlx.store.objects import Store, StoredObject
from gitmlx.store.writer import PACK_BELOW
from tests.support.content import files_under, sha
from tests.support.unit_store import corrupt_in_pack, opened_pack, put_loose, read_object


def pack_files(store: Store) -> list[Path]:
    return sorted(store.packs_dir.glob("*" + store_packs.SUFFIX))


def put(store: Store, data: bytes) -> Pointer:
    return store.insert_stream(io.BytesIO(data))


def blobs(n: int, prefix: bytes = b"object") -> list[bytes]:
    return [prefix + b" %d " % i + bytes([i % 251]) * (100 + 37 * i) for i in range(n)]


def assert_all_readable(store: Store, datas: list[bytes]) -> None:
    for data in datas:
        oid = sha(data)
        assert store.has(oid), oid
        assert store.size(oid) == len(data)
        assert read_object(store, oid) == data
        assert store.verify(oid)


# --- where objects go ------------------------------------------------------------------


def test_small_objects_go_into_one_pack_file(store: Store) -> None:
    datas = blobs(20)
    pointers = [put(store, d) for d in datas]
    assert pointers == [Pointer(sha(d), len(d)) for d in datas]
    store.finish_pack()
    [pack] = pack_files(store)
    assert files_under(store.root) == [pack]  # no loose object, no temporary file
    assert store_packs.is_pack_name(pack.name)
    assert stat.S_IMODE(pack.stat().st_mode) & 0o222 == 0  # read-only like loose objects
    with pack.open("rb") as f:
        assert f.read(8) == store_packs.MAGIC
    with opened_pack(pack) as opened:
        assert opened.count == len(datas)
        assert opened.index_intact()
        assert [oid for oid, _, _ in opened.entries()] == sorted(sha(d) for d in datas)
    for d in datas:
        assert store.is_packed(sha(d))
    assert_all_readable(store, datas)
    assert_all_readable(Store(store.root), datas)


def test_a_pack_is_seen_by_another_store_only_once_finished(store: Store) -> None:
    datas = blobs(3)
    for d in datas:
        put(store, d)
    other = Store(store.root)
    for d in datas:
        assert store.has(sha(d)) and read_object(store, sha(d)) == d  # at once, in this Store
        assert not other.has(sha(d))
    assert pack_files(store) == []
    store.finish_pack()
    assert_all_readable(other, datas)


def test_sync_finishes_the_pack(store: Store) -> None:
    datas = blobs(2)
    for d in datas:
        put(store, d)
    store.sync()
    assert len(pack_files(store)) == 1
    assert_all_readable(Store(store.root), datas)


def test_the_same_small_object_twice_is_stored_once(store: Store) -> None:
    put(store, b"same")
    put(store, b"same")
    put(store, b"different")
    store.finish_pack()
    [pack] = pack_files(store)
    with opened_pack(pack) as opened:
        assert [oid for oid, _, _ in opened.entries()] == sorted([sha(b"same"), sha(b"different")])


def test_two_small_writers_of_the_same_object_at_once(store: Store) -> None:
    a, b = store.writer(), store.writer()
    for w in (a, b):
        w.write(b"concurrent")
    with a, b:
        assert a.commit() == b.commit() == Pointer(sha(b"concurrent"), 10)
    put(store, b"neighbour")
    store.finish_pack()
    assert list(Store(store.root).iter_objects()) == sorted(
        [StoredObject(sha(b"concurrent"), 10), StoredObject(sha(b"neighbour"), 9)], key=lambda o: o.oid
    )


@pytest.mark.parametrize("size", [PACK_BELOW, PACK_BELOW + 1, 3 * PACK_BELOW])
def test_an_object_of_pack_below_or_more_stays_loose(store: Store, size: int) -> None:
    data = (os.urandom(4096) * (size // 4096 + 1))[:size]
    with store.writer() as writer:
        for start in range(0, size, 100_000):  # crosses PACK_BELOW in the middle of a write
            writer.write(data[start : start + 100_000])
        pointer = writer.commit()
    assert pointer == Pointer(sha(data), size)
    assert store.path(pointer.oid).read_bytes() == data
    put(store, b"small one")
    put(store, b"small two")
    store.finish_pack()
    [pack] = pack_files(store)
    with opened_pack(pack) as opened:
        assert opened.find(pointer.oid) is None
        assert opened.count == 2


def test_an_object_just_under_pack_below_is_packed(store: Store) -> None:
    data = os.urandom(PACK_BELOW - 1)
    with store.writer() as writer:
        for start in range(0, len(data), 300_000):
            writer.write(data[start : start + 300_000])
        pointer = writer.commit()
    put(store, b"neighbour")
    store.finish_pack()
    assert not store.path(pointer.oid).exists()
    assert store.is_packed(pointer.oid)
    assert read_object(Store(store.root), pointer.oid) == data


def test_a_one_object_batch_becomes_a_loose_object(store: Store) -> None:
    pointer = put(store, b"alone")
    assert not store.path(pointer.oid).exists()  # pending until the batch ends
    store.finish_pack()
    assert pack_files(store) == []
    assert files_under(store.tmp_dir) == []
    path = store.path(pointer.oid)
    assert files_under(store.objects_dir) == [path]
    assert path.read_bytes() == b"alone"
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    assert not store.is_packed(pointer.oid)
    assert read_object(Store(store.root), pointer.oid) == b"alone"


def test_finishing_with_nothing_pending_makes_nothing(store: Store) -> None:
    store.finish_pack()
    store.sync()
    assert files_under(store.root) == []


def test_writer_loose_forces_a_file_of_its_own(store: Store) -> None:
    a = put_loose(store, b"tiny a")
    b = put_loose(store, b"tiny b")
    store.finish_pack()
    assert pack_files(store) == []
    assert files_under(store.objects_dir) == sorted([store.path(a.oid), store.path(b.oid)])


def test_file_path_materializes_a_packed_object(store: Store) -> None:
    datas = blobs(3)
    for d in datas:
        put(store, d)
    store.finish_pack()
    oid = sha(datas[1])
    assert not store.path(oid).exists()
    path = store.file_path(oid)
    assert path == store.path(oid)
    assert path.read_bytes() == datas[1]
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0
    assert not store.is_packed(oid)
    assert store.file_path(sha(b"nowhere")) == store.path(sha(b"nowhere"))  # missing: just the path


# --- reading --------------------------------------------------------------------------


@pytest.mark.parametrize("finished", [False, True])
def test_ranged_reads_of_a_packed_object(store: Store, finished: bool) -> None:
    datas = [os.urandom(1000 + 17 * i) for i in range(3)]
    for d in datas:
        put(store, d)
    if finished:
        store.finish_pack()
        store = Store(store.root)
    data = datas[1]  # not at the start of the pack
    with store.open(sha(data)) as f:
        assert f.seekable() and f.readable()
        assert f.seek(100) == 100 and f.tell() == 100
        assert f.read(50) == data[100:150]
        assert f.seek(10, io.SEEK_CUR) == 160
        assert f.read(5) == data[160:165]
        assert f.seek(-20, io.SEEK_END) == len(data) - 20
        assert f.read() == data[-20:]  # never past the object's end into the next one
        assert f.read(10) == b""
        f.seek(len(data) + 50)
        assert f.read(10) == b""
        f.seek(0)
        buf = bytearray(64)
        assert f.readinto(buf) == 64 and bytes(buf) == data[:64]
        f.seek(0)
        assert f.read() == data


def test_a_packed_reader_has_no_fileno_and_fastcopy_falls_back(store: Store, tmp_path: Path) -> None:
    datas = [os.urandom(5000), os.urandom(7000), os.urandom(3000)]
    for d in datas:
        put(store, d)
    for finished in (False, True):
        if finished:
            store.finish_pack()
        for i, d in enumerate(datas):
            with store.open(sha(d)) as src:
                assert isinstance(src, store_packs.PackedObjectReader)
                with pytest.raises(io.UnsupportedOperation):
                    src.fileno()
                dst_path = tmp_path / f"copy-{finished}-{i}"
                with open(dst_path, "xb") as dst:
                    fastcopy.copy_file(src, dst, len(d))
            # Copying from the pack's descriptor would give the pack's bytes from offset 0.
            assert dst_path.read_bytes() == d


def test_a_reader_outlives_the_rewrite_of_its_pack(store: Store) -> None:
    keep, drop = os.urandom(4000), os.urandom(4000)
    put(store, keep)
    put(store, drop)
    store.finish_pack()
    reader = Store(store.root).open(sha(keep))
    [old] = pack_files(store)
    store.discard([sha(drop)])
    assert not old.exists()
    with reader:
        assert reader.read() == keep


# --- listing, removing, merging -------------------------------------------------------


def test_iter_objects_lists_packed_and_loose_objects_once_each(store: Store) -> None:
    packed = blobs(3, b"packed")
    for d in packed:
        put(store, d)
    store.finish_pack()
    loose = put_loose(store, b"loose only")
    both = sha(packed[0])
    store.file_path(both)  # now loose too
    assert store.path(both).is_file() and pack_files(store)
    expected = sorted(
        [StoredObject(sha(d), len(d)) for d in packed] + [StoredObject(loose.oid, loose.size)], key=lambda o: o.oid
    )
    assert list(store.iter_objects()) == expected
    assert list(Store(store.root).iter_objects()) == expected


def test_discard_rewrites_the_pack_without_the_object(store: Store) -> None:
    datas = blobs(5)
    for d in datas:
        put(store, d)
    store.finish_pack()
    [old] = pack_files(store)
    other = Store(store.root)
    gone = [sha(datas[1]), sha(datas[3])]
    store.discard(gone)
    [new] = pack_files(store)
    assert new != old and not old.exists()
    kept = [datas[0], datas[2], datas[4]]
    for view in (store, Store(store.root)):
        for oid in gone:
            assert not view.has(oid)
        assert_all_readable(view, kept)
        assert [o.oid for o in view.iter_objects()] == sorted(sha(d) for d in kept)
    assert_all_readable(other, kept)  # a Store that had the old pack open


def test_discard_of_every_object_in_a_pack_removes_the_pack(store: Store) -> None:
    datas = blobs(2)
    for d in datas:
        put(store, d)
    store.finish_pack()
    store.discard(sha(d) for d in datas)
    assert pack_files(store) == []
    assert list(Store(store.root).iter_objects()) == []


def test_discard_of_loose_and_pending_objects(store: Store) -> None:
    loose = put_loose(store, b"loose")
    datas = blobs(3)
    for d in datas:
        put(store, d)
    store.discard([loose.oid, sha(datas[0]), sha(b"never stored")])
    assert not store.has(loose.oid) and not store.path(loose.oid).exists()
    assert not store.has(sha(datas[0]))
    store.finish_pack()
    fresh = Store(store.root)
    assert not fresh.has(sha(datas[0]))
    assert_all_readable(fresh, datas[1:])


def test_quarantine_of_a_packed_object(store: Store) -> None:
    datas = blobs(4)
    for d in datas:
        put(store, d)
    store.finish_pack()
    target = datas[2]
    bad = bytes(len(target))
    corrupt_in_pack(store, sha(target), bad)
    assert not store.verify(sha(target))
    store.quarantine(sha(target))
    assert (store.root / "bad" / sha(target)).read_bytes() == bad
    assert not list((store.root / "bad").glob(".*"))  # no temporary file left
    rest = datas[:2] + datas[3:]
    for view in (store, Store(store.root)):
        assert not view.has(sha(target))
        assert_all_readable(view, rest)
    # A good copy can be stored again afterwards.
    put(store, target)
    put(store, b"neighbour")
    store.finish_pack()
    assert_all_readable(Store(store.root), [target])


def test_quarantine_of_a_loose_object(store: Store) -> None:
    pointer = put_loose(store, b"loose and bad")
    store.quarantine(pointer.oid)
    assert not store.has(pointer.oid) and not Store(store.root).has(pointer.oid)
    assert (store.root / "bad" / pointer.oid).read_bytes() == b"loose and bad"


def make_packs(store: Store, n: int, per_pack: int = 2) -> list[bytes]:
    every: list[bytes] = []
    for i in range(n):
        datas = blobs(per_pack, b"pack %d" % i)
        for d in datas:
            put(store, d)
        store.finish_pack()
        every += datas
    return every


def test_merge_packs_reduces_the_number_of_packs(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packset_module, "PACKS_MERGE_ABOVE", 100)
    every = make_packs(store, 7)
    assert len(pack_files(store)) == 7
    other = Store(store.root)
    assert_all_readable(other, every)
    store.merge_packs()  # not above the limit: nothing to do
    assert len(pack_files(store)) == 7
    monkeypatch.setattr(packset_module, "PACKS_MERGE_ABOVE", 4)
    store.merge_packs()
    remaining = len(pack_files(store))
    assert remaining <= 4
    for view in (store, Store(store.root), other):
        assert_all_readable(view, every)
    assert [o.oid for o in Store(store.root).iter_objects()] == sorted(sha(d) for d in every)


def test_finishing_packs_merges_them_past_the_limit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packset_module, "PACKS_MERGE_ABOVE", 3)
    every: list[bytes] = []
    for i in range(8):
        every += make_packs(store, 1, per_pack=3 + i)
        assert len(pack_files(store)) <= 3
    assert_all_readable(Store(store.root), every)


def test_a_full_pending_pack_is_finished_and_a_new_one_begun(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appender_module, "PACK_MAX", 10_000)
    datas = [os.urandom(3000) for _ in range(10)]
    for d in datas:
        put(store, d)
    assert len(pack_files(store)) >= 2  # finished along the way, before any finish_pack
    store.finish_pack()
    assert_all_readable(Store(store.root), datas)


# --- packs of other processes, and files that are not packs ---------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"garbage",
        b"MLXSPACK" + os.urandom(200),
        os.urandom(4096),
    ],
    ids=["empty", "garbage", "magic-then-garbage", "random"],
)
def test_a_file_named_like_a_pack_that_is_not_one_is_ignored(store: Store, content: bytes) -> None:
    datas = blobs(2)
    for d in datas:
        put(store, d)
    store.finish_pack()
    (store.packs_dir / ("0" * 40 + store_packs.SUFFIX)).write_bytes(content)
    (store.packs_dir / "not-a-pack-name.mlxpack").write_bytes(b"ignored too")
    fresh = Store(store.root)
    assert not fresh.has(sha(b"nowhere"))
    assert_all_readable(fresh, datas)
    assert [o.oid for o in fresh.iter_objects()] == sorted(sha(d) for d in datas)
    put(fresh, b"more")
    put(fresh, b"and more")
    fresh.finish_pack()  # finishing and rescanning with the bad file present works too
    assert_all_readable(Store(store.root), [*datas, b"more", b"and more"])


def test_a_truncated_pack_is_ignored(store: Store) -> None:
    datas = blobs(3)
    for d in datas:
        put(store, d)
    store.finish_pack()
    [pack] = pack_files(store)
    whole = pack.read_bytes()
    os.chmod(pack, 0o644)
    pack.write_bytes(whole[: len(whole) - 7])
    fresh = Store(store.root)
    for d in datas:
        assert not fresh.has(sha(d))
    assert list(fresh.iter_objects()) == []


def test_a_pack_finished_by_another_store_is_found_at_once(store: Store) -> None:
    writer_side = Store(store.root)
    assert not store.has(sha(b"first"))  # `store` has looked (no packs/ yet)
    put(writer_side, b"first")
    put(writer_side, b"second")
    writer_side.finish_pack()
    assert store.has(sha(b"first")) and read_object(store, sha(b"second")) == b"second"
    put(writer_side, b"third")
    put(writer_side, b"fourth")
    writer_side.finish_pack()  # a second pack, right after the first
    assert store.has(sha(b"third")) and read_object(store, sha(b"fourth")) == b"fourth"


def test_a_pack_added_within_the_same_clock_tick_is_still_found(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A directory's mtime may not change between two changes in one tick: the reader
    must not trust an unchanged mtime it saw less than a second after that mtime (once
    RESCAN_EVERY has passed since its last look: the clock is moved on by hand)."""
    clock = [time.time()]
    monkeypatch.setattr(packset_module.time, "time", lambda: clock[0])
    reader_side = Store(store.root)
    put(store, b"a")
    put(store, b"b")
    store.finish_pack()
    tick = time.time_ns()
    os.utime(store.packs_dir, ns=(tick, tick))
    assert reader_side.has(sha(b"a"))  # looks at packs/ with mtime `tick`
    put(store, b"c")
    put(store, b"d")
    store.finish_pack()
    os.utime(store.packs_dir, ns=(tick, tick))  # as if both renames fell in one tick
    assert not reader_side.has(sha(b"c")), "looked again within RESCAN_EVERY"
    clock[0] += 2 * packset_module.RESCAN_EVERY
    assert reader_side.has(sha(b"c"))
    assert read_object(reader_side, sha(b"d")) == b"d"


def test_an_old_unchanged_packs_directory_is_not_listed_again(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    put(store, b"a")
    put(store, b"b")
    store.finish_pack()
    old = time.time_ns() - 10 * 10**9
    os.utime(store.packs_dir, ns=(old, old))
    reader_side = Store(store.root)
    assert reader_side.has(sha(b"a"))
    listed: list[object] = []
    real_listdir = os.listdir

    def counting_listdir(path: object) -> list[str]:
        listed.append(path)
        return real_listdir(path)  # type: ignore[arg-type]

    monkeypatch.setattr(packset_module.os, "listdir", counting_listdir)
    for _ in range(5):
        assert not reader_side.has(sha(b"missing"))
    assert listed == []
    monkeypatch.undo()
    put(store, b"c")
    put(store, b"d")
    store.finish_pack()  # changes the mtime: seen at once
    assert reader_side.has(sha(b"c"))


# --- threads --------------------------------------------------------------------------


@pytest.mark.parametrize("small_packs", [False, True])
def test_threads_committing_small_objects_to_one_store(
    store: Store, monkeypatch: pytest.MonkeyPatch, small_packs: bool
) -> None:
    """With a small PACK_MAX, packs are finished (and merged) while other threads append."""
    if small_packs:
        monkeypatch.setattr(appender_module, "PACK_MAX", 64 * 1024)
    monkeypatch.setattr(packset_module, "PACKS_MERGE_ABOVE", 4)
    per_thread = 60
    datas = [[b"thread %d object %d " % (t, i) + os.urandom(i * 53) for i in range(per_thread)] for t in range(8)]
    shared = b"every thread stores this one"
    start = threading.Barrier(8)

    def work(mine: list[bytes]) -> None:
        start.wait(timeout=60)
        for i, d in enumerate(mine):
            with store.writer() as writer:
                writer.write(d[: len(d) // 2])
                writer.write(d[len(d) // 2 :])
                assert writer.commit() == Pointer(sha(d), len(d))
            assert read_object(store, sha(d)) == d  # visible to this Store at once
            if i % 20 == 0:
                put(store, shared)

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(work, mine) for mine in datas]:
            future.result()  # re-raises a thread's failure here
    every = [d for mine in datas for d in mine] + [shared]
    assert_all_readable(store, every)
    store.finish_pack()
    assert files_under(store.tmp_dir) == []
    fresh = Store(store.root)
    assert_all_readable(fresh, every)
    assert [o.oid for o in fresh.iter_objects()] == sorted({sha(d) for d in every})
    if small_packs:
        assert 1 <= len(pack_files(store)) <= 4
    else:
        assert len(pack_files(store)) == 1 and files_under(store.objects_dir) == []


# --- the format -----------------------------------------------------------------------


def test_write_pack_and_pack_file_round_trip(tmp_path: Path) -> None:
    source_store = Store(tmp_path / "src")
    datas = blobs(6)
    for d in datas:
        put(source_store, d)
    source_store.finish_pack()
    readers = [(sha(d), source_store.open(sha(d))) for d in datas]
    out = store_packs.write_pack(tmp_path, tmp_path / "packs", readers)  # type: ignore[arg-type]
    assert out is not None and store_packs.is_pack_name(out.name)
    pack = store_packs.PackFile(out)
    try:
        assert pack.count == len(datas) and pack.index_intact()
        for d in datas:
            found = pack.find(sha(d))
            assert found is not None and found[1] == len(d)
            assert pack.reader(*found).read() == d
        assert pack.find(sha(b"absent")) is None
    finally:
        pack.close()
    assert store_packs.write_pack(tmp_path, tmp_path / "packs", []) is None
    assert [p.name for p in (tmp_path / "packs").iterdir()] == [out.name]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("spack-")]  # no temporary left


def test_finds_past_the_prefix_array_threshold_give_the_same_answers(tmp_path: Path) -> None:
    datas = [b"fan %d" % i for i in range(600)]  # every first byte of the oid, several times
    readers = [(sha(d), io.BytesIO(d)) for d in datas]
    out = store_packs.write_pack(tmp_path, tmp_path / "packs", readers)  # type: ignore[arg-type]
    assert out is not None
    pack = store_packs.PackFile(out)
    absent = [sha(b"absent %d" % i) for i in range(50)] + ["00" * 32, "ff" * 32]
    try:
        for _ in range(2):  # the first round crosses KEYS_AFTER, the second uses the array
            for d in datas:
                found = pack.find(sha(d))
                assert found is not None and pack.reader(*found).read() == d
            assert all(pack.find(oid) is None for oid in absent)
        assert pack._keys is not None and len(pack._keys) == len(datas)
    finally:
        pack.close()


def test_a_damaged_index_is_detected(tmp_path: Path) -> None:
    store = Store(tmp_path / "mlx")
    for d in blobs(3):
        put(store, d)
    store.finish_pack()
    [path] = pack_files(store)
    pack = store_packs.PackFile(path)
    index_at = pack.file_size - store_packs.TRAILER.size - pack.count * store_packs.ENTRY.size
    pack.close()
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(index_at + 40)  # inside the first entry's offset field
        f.write(b"\xff")
    damaged = store_packs.PackFile(path)
    try:
        assert not damaged.index_intact()
    finally:
        damaged.close()


@pytest.mark.parametrize(
    "name, ok",
    [
        ("0" * 40 + ".mlxpack", True),
        ("a1" * 20 + ".mlxpack", True),
        ("A1" * 20 + ".mlxpack", False),
        ("0" * 39 + ".mlxpack", False),
        ("0" * 41 + ".mlxpack", False),
        ("0" * 40 + ".pack", False),
        ("0" * 40, False),
        (".lock", False),
    ],
)
def test_is_pack_name(name: str, ok: bool) -> None:
    assert store_packs.is_pack_name(name) is ok


# -- a writer killed before it named its pack ------------------------------------------------

_KILLED_WRITER = """
import io, os, sys
from gitmlx.store.objects import Store
store = Store(sys.argv[1])
for i in range(int(sys.argv[2])):
    store.insert_stream(io.BytesIO(b"object %d " % i * 500))
sys.stdout.write("written\\n"); sys.stdout.flush()
if sys.argv[3] == "die":
    os._exit(0)  # as after SIGKILL: no atexit, the pack is never named
sys.stdin.read()  # alive (holding its pack) until told to go
"""


def _object(i: int) -> bytes:
    return b"object %d " % i * 500


def test_objects_of_a_killed_writers_pack_are_recovered_by_the_next_store(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = tmp_path / "mlx"
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(root), "6", "die"], check=True, capture_output=True)
    assert [p.name for p in (root / "tmp").iterdir() if p.name.startswith("spack-")], "the killed writer left its pack"
    assert not (root / "packs").exists() or not list((root / "packs").glob("*.mlxpack"))

    store = Store(root)
    for i in range(6):
        oid = hashlib.sha256(_object(i)).hexdigest()
        assert store.has(oid), f"object {i} of the killed writer was lost"
        assert store.verify(oid)
    assert not [p for p in (root / "tmp").iterdir() if p.name.startswith("spack-")]
    assert len(list((root / "packs").glob("*.mlxpack"))) == 1


def test_a_torn_record_at_the_end_of_an_orphan_is_dropped_and_the_rest_recovered(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = tmp_path / "mlx"
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(root), "3", "die"], check=True, capture_output=True)
    (orphan,) = [p for p in (root / "tmp").iterdir() if p.name.startswith("spack-")]
    with open(orphan, "r+b") as f:
        f.truncate(orphan.stat().st_size - 10)  # the last object's bytes cut short
    store = Store(root)
    first, last = (hashlib.sha256(_object(i)).hexdigest() for i in (0, 2))
    assert store.has(first) and store.verify(first)
    assert not store.has(last)


def test_a_live_writers_pack_is_never_taken(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = tmp_path / "mlx"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(root), "4", "live"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"written\n"
        store = Store(root)
        oid = hashlib.sha256(_object(1)).hexdigest()
        assert not store.has(oid), "another process's pack being written must stay its own"
        assert [p for p in (root / "tmp").iterdir() if p.name.startswith("spack-")], "a live writer's pack was taken"
    finally:
        proc.communicate(b"")
    assert proc.returncode == 0
    assert Store(root).has(hashlib.sha256(_object(1)).hexdigest()), "the writer named its pack at exit"


def test_recovery_never_touches_files_that_are_not_store_packs(tmp_path: Path) -> None:
    """push writes its upload packs in the same tmp/ (unlocked, another format)."""
    root = tmp_path / "mlx"
    (root / "tmp").mkdir(parents=True)
    upload = root / "tmp" / "pack-123-0123456789abcdef"
    upload.write_bytes(b"MLXPACK1" + b"\0" * 100)
    lookalike = root / "tmp" / "spack-123-0123456789abcdef"
    lookalike.write_bytes(b"not a store pack at all")
    assert not Store(root).has(hashlib.sha256(b"x").hexdigest())
    assert upload.exists() and lookalike.exists()


def test_big_packs_are_never_merged(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packset_module, "PACKS_MERGE_ABOVE", 100)
    every = make_packs(store, 3, per_pack=40)  # bigger packs
    big = set(pack_files(store))
    for i in range(6):
        datas = [b"small pack %d object %d" % (i, j) for j in range(2)]
        for d in datas:
            put(store, d)
        store.finish_pack()
        every += datas
    assert len(pack_files(store)) == 9
    threshold = min(p.stat().st_size for p in big)
    assert all(p.stat().st_size < threshold for p in set(pack_files(store)) - big)
    monkeypatch.setattr(packset_module, "MERGE_BELOW", threshold)
    monkeypatch.setattr(packset_module, "PACKS_MERGE_ABOVE", 2)
    store.merge_packs()
    after = set(pack_files(store))
    assert big <= after, "a big pack was rewritten"
    assert len(after - big) <= 2, "the small packs were not merged"
    assert_all_readable(Store(store.root), every)


def test_find_tells_apart_oids_sharing_their_first_bytes(tmp_path: Path) -> None:
    """Lookups bisect on each oid's first 8 bytes: oids sharing them (and an absent oid
    sharing them) must still be told apart by the whole oid."""
    (tmp_path / "tmp").mkdir()
    shared = "ab" * 8
    oids = [shared + f"{k:02x}" * 24 for k in (1, 5, 9)] + ["00" * 32, "ff" * 32, "ab" * 7 + "aa" + "00" * 24]
    pending = store_packs.PendingPack(tmp_path / "tmp")
    for n, oid in enumerate(oids):
        pending.add(oid, bytes([n]) * (n + 1), durable=False)
    pack = store_packs.PackFile(pending.finish(tmp_path / "packs"))
    try:
        for n, oid in enumerate(oids):
            offset, size = pack.find(oid)
            assert size == n + 1
            assert os.pread(pack.fd, size, offset) == bytes([n]) * size
        assert pack.find(shared + "07" * 24) is None
        assert pack.find(shared + "ff" * 24) is None
        assert pack.find("01" * 32) is None
    finally:
        pack.close()


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def _stored_then_dropped(root: Path, datas: list[bytes]) -> None:
    """`datas` put into the store at `root` by a store that is synced, then let go."""
    store = Store(root)
    for d in datas:
        put(store, d)
    store.sync()
    del store
    gc.collect()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_dropped_store_closes_its_packs_after_its_batch_is_synced(tmp_path: Path) -> None:
    # A long-lived process (a Python API caller) opens a store per call: each dropped store
    # must give its pack descriptors back, else the process runs out after a few hundred.
    datas = blobs(3)
    _stored_then_dropped(tmp_path / "store", datas)
    before = _open_descriptors()
    for i in range(20):
        store = Store(tmp_path / "store")
        assert_all_readable(store, datas)  # opens the pack, reads through its descriptor
        del store
        _stored_then_dropped(tmp_path / "store", [b"one more object %d" % i])  # a pending pack, named
    gc.collect()
    assert _open_descriptors() - before <= 2


def test_a_reader_keeps_its_pack_open_after_its_store_is_dropped(tmp_path: Path) -> None:
    data = blobs(2)
    _stored_then_dropped(tmp_path / "store", data)
    store = Store(tmp_path / "store")
    reader = store.open(sha(data[1]))
    del store
    gc.collect()
    assert reader.read() == data[1]
    reader.close()


def test_add_many_writes_each_object_once_across_several_calls(tmp_path: Path) -> None:
    """A batch of more records than one pwritev(2) takes (IOV_MAX buffers), with a
    repeat inside the batch and one already in the pack: each object is written once,
    and every one reads back whole from the named pack."""
    (tmp_path / "tmp").mkdir()
    datas = [bytes([k % 251]) * (k % 97 + 1) + k.to_bytes(4, "big") for k in range(1500)]
    oids = [hashlib.sha256(d).hexdigest() for d in datas]
    pending = store_packs.PendingPack(tmp_path / "tmp")
    pending.add(oids[7], datas[7], durable=False)
    end_before = pending.end
    batch = list(zip(oids, datas, strict=True)) + [(oids[3], datas[3])]
    assert pending.add_many(batch, durable=False)
    record = store_packs.RECORD.size
    assert pending.end == end_before + sum(record + len(d) for k, d in enumerate(datas) if k != 7)
    pack = store_packs.PackFile(pending.finish(tmp_path / "packs"))
    try:
        for oid, data in zip(oids, datas, strict=True):
            offset, size = pack.find(oid)
            assert os.pread(pack.fd, size, offset) == data
    finally:
        pack.close()
