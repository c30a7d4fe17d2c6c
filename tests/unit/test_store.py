"""gitmlx.store.objects: atomic insertion, the sharded read-only layout, and what a failed write leaves."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import random
import stat
from pathlib import Path

import pytest

from gitmlx.errors import IntegrityError, MlxError
from gitmlx.format.pointer import Pointer
from gitmlx.store import objects as store_module
from gitmlx.store import packs as store_packs
from gitmlx.store.objects import BLOCK_SIZE, Store, StoredObject
from tests.support.content import Source, files_under, sha
from tests.support.unit_store import corrupt_in_pack, put_loose


def test_insert_stream_returns_the_pointer_and_stores_the_bytes(store: Store) -> None:
    data = b"some weights"
    p = store.insert_stream(io.BytesIO(data))
    assert p == Pointer(sha(data), len(data))
    assert store.has(p.oid)
    assert store.size(p.oid) == len(data)
    with store.open(p.oid) as f:
        assert f.read() == data
    assert store.verify(p.oid)


def test_insert_stream_larger_than_a_block_with_short_reads(store: Store) -> None:
    data = os.urandom(1000) * (2 * BLOCK_SIZE // 1000 + 7)
    p = store.insert_stream(Source(data, step=BLOCK_SIZE // 3))  # type: ignore[arg-type]
    assert p == Pointer(sha(data), len(data))
    assert store.path(p.oid).read_bytes() == data


def test_insert_empty_object(store: Store) -> None:
    p = store.insert_stream(io.BytesIO(b""))
    assert p == Pointer(sha(b""), 0)
    assert store.has(p.oid)


def test_insert_file(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "model.bin"
    src.write_bytes(b"abc" * 100)
    assert store.insert_file(src) == Pointer(sha(b"abc" * 100), 300)


def test_object_path_is_sharded_and_read_only(store: Store) -> None:
    p = put_loose(store, b"x")
    path = store.path(p.oid)
    assert path == store.root / "objects" / p.oid[0:2] / p.oid[2:4] / p.oid
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0


def test_insert_leaves_no_temporary_file(store: Store) -> None:
    put_loose(store, b"x" * 100)
    assert files_under(store.tmp_dir) == []


def test_packed_inserts_leave_no_temporary_file_once_the_pack_is_finished(store: Store) -> None:
    store.insert_stream(io.BytesIO(b"x" * 100))
    store.insert_stream(io.BytesIO(b"y" * 100))
    store.finish_pack()
    assert files_under(store.tmp_dir) == []
    assert len(list(store.packs_dir.glob("*" + store_packs.SUFFIX))) == 1


@pytest.mark.parametrize(
    "oid",
    [
        "../x",
        "../../../../etc/passwd",
        "A" * 64,
        sha(b"x").upper(),
        sha(b"x")[:63],
        sha(b"x") + "0",
        "",
        "/" + sha(b"x")[1:],
        sha(b"x")[:62] + "/.",
        sha(b"x") + "\n",
    ],
)
def test_path_refuses_invalid_oids(store: Store, oid: str) -> None:
    with pytest.raises(MlxError):
        store.path(oid)
    with pytest.raises(MlxError):
        store.has(oid)
    with pytest.raises(MlxError):
        store.open(oid)


def test_has_is_false_for_missing_object_and_for_a_directory(store: Store) -> None:
    oid = sha(b"missing")
    assert not store.has(oid)
    store.path(oid).mkdir(parents=True)
    assert not store.has(oid)


def test_writer_aborted_midway_leaves_no_temp_file_and_no_object(store: Store) -> None:
    data = b"half written"
    with pytest.raises(RuntimeError, match="killed"), store.writer(loose=True) as writer:
        writer.write(data)
        assert writer.tmp_path.exists()
        raise RuntimeError("killed")
    assert not writer.tmp_path.exists()
    assert files_under(store.tmp_dir) == []
    assert files_under(store.objects_dir) == []
    assert not store.has(sha(data))


def test_writer_left_without_commit_removes_its_temp_file(store: Store) -> None:
    with store.writer() as writer:
        writer.write(b"forgotten")
    assert files_under(store.root) == []


def test_commit_with_wrong_expected_pointer_raises_and_leaves_nothing(store: Store) -> None:
    data = b"actual bytes"
    wrong_oid = Pointer(sha(b"other bytes"), len(data))
    with pytest.raises(IntegrityError) as info, store.writer() as writer:
        writer.write(data)
        writer.commit(wrong_oid)
    assert wrong_oid.oid in str(info.value) and sha(data) in str(info.value)
    assert info.value.hint
    assert files_under(store.root) == []
    assert not store.has(sha(data))
    assert not store.has(wrong_oid.oid)


def test_commit_with_wrong_expected_size_raises_and_leaves_nothing(store: Store) -> None:
    data = b"actual bytes"
    with pytest.raises(IntegrityError):
        store.insert_stream(io.BytesIO(data), expected=Pointer(sha(data), len(data) + 1))
    assert files_under(store.root) == []


def test_commit_with_right_expected_pointer(store: Store) -> None:
    data = b"fetched"
    expected = Pointer(sha(data), len(data))
    assert store.insert_stream(io.BytesIO(data), expected=expected) == expected
    assert store.has(expected.oid)


def test_expected_lfs_pointer_commits_under_the_same_oid(store: Store) -> None:
    data = b"from lfs"
    expected = Pointer(sha(data), len(data), "https://git-lfs.github.com/spec/v1")
    assert store.insert_stream(io.BytesIO(data), expected=expected).oid == expected.oid


def test_failed_rename_leaves_no_temp_file(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_replace(src: object, dst: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(store_module.os, "replace", no_replace)
    with pytest.raises(PermissionError):
        put_loose(store, b"data")
    assert files_under(store.root) == []


def test_inserting_the_same_object_twice_is_fine(store: Store) -> None:
    first = put_loose(store, b"same")
    second = put_loose(store, b"same")
    assert first == second
    assert files_under(store.objects_dir) == [store.path(first.oid)]
    assert files_under(store.tmp_dir) == []
    assert store.verify(first.oid)


def test_two_writers_of_the_same_object_at_once(store: Store) -> None:
    a = store.writer(loose=True)
    b = store.writer(loose=True)
    assert a.tmp_path != b.tmp_path
    for w in (a, b):
        w.write(b"concurrent")
    with a, b:
        assert a.commit() == b.commit()
    assert [p.name for p in files_under(store.root)] == [sha(b"concurrent")]


def test_verify_detects_changed_bytes(store: Store) -> None:
    p = put_loose(store, b"good")
    assert store.verify(p.oid)
    path = store.path(p.oid)
    os.chmod(path, 0o644)
    path.write_bytes(b"evil")
    assert not store.verify(p.oid)


def test_verify_detects_changed_bytes_inside_a_pack(store: Store) -> None:
    p = store.insert_stream(io.BytesIO(b"good"))
    other = store.insert_stream(io.BytesIO(b"neighbour"))
    store.finish_pack()
    assert store.is_packed(p.oid) and store.verify(p.oid)
    corrupt_in_pack(store, p.oid, b"evil")
    assert not store.verify(p.oid)
    assert not Store(store.root).verify(p.oid)
    assert store.verify(other.oid)  # only the damaged object's bytes changed


def test_iter_objects_lists_objects_and_skips_stray_files(store: Store) -> None:
    a = put_loose(store, b"a" * 3)
    b = put_loose(store, b"b" * 5)
    objects = store.objects_dir
    other = sha(b"stray")
    (objects / "README").write_text("not an object")
    (objects / a.oid[0:2] / "stray").write_text("x")
    (objects / a.oid[0:2] / a.oid[2:4] / (a.oid + ".tmp")).write_text("x")
    (objects / a.oid[0:2] / a.oid[2:4] / a.oid.upper()).write_text("x")
    (objects / a.oid[0:2] / a.oid[2:4] / other).write_text("wrong shard")
    (objects / "zz" / "yy").mkdir(parents=True)
    (objects / "zz" / "yy" / "zzyy").write_text("x")
    (objects / other[0:2] / other[2:4] / other).mkdir(parents=True)  # a directory, not a file
    store.tmp_dir.mkdir(exist_ok=True)
    (store.tmp_dir / "obj-1-abc").write_text("in flight")
    assert list(store.iter_objects()) == sorted([StoredObject(a.oid, 3), StoredObject(b.oid, 5)], key=lambda o: o.oid)


def test_iter_objects_skips_symlinks(store: Store, tmp_path: Path) -> None:
    target = tmp_path / "outside"
    target.write_bytes(b"outside the store")
    oid = sha(b"outside the store")
    store.path(oid).parent.mkdir(parents=True)
    store.path(oid).symlink_to(target)
    assert list(store.iter_objects()) == []


def test_iter_objects_on_an_empty_store(store: Store) -> None:
    assert list(store.iter_objects()) == []


def test_objects_on_another_file_system_are_written_beside_them(store: Store, monkeypatch) -> None:
    """rename(2) cannot cross file systems: with `objects/` elsewhere (a symlink), objects
    are written in `objects/tmp/`, which iter_objects never lists."""
    real_stat = os.stat
    objects = str(store.objects_dir)

    def stat_on_two_devices(path, *args, **kwargs):
        found = real_stat(path, *args, **kwargs)
        if str(path) != objects:
            return found
        fields = list(found)
        fields[stat.ST_DEV] += 1
        return os.stat_result(fields)

    monkeypatch.setattr(store_module.os, "stat", stat_on_two_devices)
    with store.writer(loose=True) as writer:
        assert writer.tmp_path.parent == store.objects_dir / "tmp"
        writer.write(b"elsewhere")
        pointer = writer.commit()
    assert store.has(pointer.oid) and files_under(store.objects_dir / "tmp") == []
    assert list(store.iter_objects()) == [StoredObject(pointer.oid, 9)]


def test_a_rename_across_file_systems_is_one_error_naming_the_store(store: Store, monkeypatch) -> None:
    def exdev(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(store_module.os, "replace", exdev)
    with pytest.raises(MlxError, match="different file systems") as raised:
        put_loose(store, b"data")
    assert str(store.root) in str(raised.value) and raised.value.hint
    assert files_under(store.root) == []


@pytest.mark.parametrize("durable", [True, False])
def test_writes_of_every_size_and_kind_are_stored_in_order(store: Store, durable: bool) -> None:
    """Small writes are gathered into recycled blocks, large immutable ones queued as they
    are; a mutable buffer changed after `write` returns must not change what was stored."""
    rng = random.Random(7)
    expected = bytearray()
    reused = bytearray(70_000)
    with store.writer(durable) as writer:
        for i in range(300):
            kind = i % 4
            if kind == 0:
                data: bytes | memoryview = rng.randbytes(rng.randint(0, 70_000))
            elif kind == 1:
                data = rng.randbytes(rng.randint(600_000, 2_500_000))  # large bytes: no copy
            elif kind == 2:
                reused[:] = rng.randbytes(len(reused))
                data = memoryview(reused)  # mutable: must be copied before write returns
            else:
                data = memoryview(rng.randbytes(3_000_000))[rng.randint(0, 1000) :]
            expected += bytes(data)
            writer.write(data)
            if kind == 2:
                reused[:10] = b"overwrite!"
        pointer = writer.commit()
    assert pointer == Pointer(hashlib.sha256(expected).hexdigest(), len(expected))
    assert store.path(pointer.oid).read_bytes() == expected


def test_large_reads_after_a_short_one_are_not_copied(store: Store) -> None:
    """A ranged read ends with a short piece; the reads after it must still go to the disk
    as they are, not through the block filler (a copy of nearly every byte)."""
    pieces = [os.urandom(BLOCK_SIZE) for _ in range(8)]
    pieces.insert(2, os.urandom(1000))  # the end of one read, then a new read's full blocks
    with store.writer(durable=False, loose=True) as writer:  # as a large download's is
        copied = [0]
        fill = writer._blocks.write

        def counting(view: memoryview) -> None:
            copied[0] += len(view)
            fill(view)

        writer._blocks.write = counting  # type: ignore[method-assign]
        for piece in pieces:
            writer.write(piece)
        pointer = writer.commit()
    assert store.path(pointer.oid).read_bytes() == b"".join(pieces)
    assert copied[0] <= 1000, f"{copied[0]} bytes copied"
