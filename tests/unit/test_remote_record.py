"""The remote record (gitmlx.store.remote_record) and the rules for trusting it
(gitmlx.transfer.confirm): a row skips a remote check only while it is young, its size
matches, no gc `pending` note lists the object and the remote still has its format
marker; a damaged record starts over empty.

A directory remote and a real store; no git.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from gitmlx.format import layout
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.base import Sink
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.store.remote_record import RemoteRecord
from gitmlx.transfer import confirm, gc_marks
from gitmlx.transfer.remote_check import PackSizes
from gitmlx.transfer.upload import upload
from tests.support.remote_layout import make_format_1

NOW = 1_800_000_000
DAY = 86400


class CountingRemote(LocalRemote):
    """Counts manifest reads: one per object asked about."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked: list[str] = []

    def get(self, key: str, sink: Sink, offset: int = 0, progress=None, length: int | None = None) -> None:
        if key.startswith(layout.MANIFESTS_PREFIX):
            self.asked.append(key.rsplit("/", 1)[-1])
        super().get(key, sink, offset, progress, length)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_MLX_NOW", str(NOW))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def remote(tmp_path: Path) -> CountingRemote:
    """Format 1, where each object asked about is one GET of its own key (what `asked`
    counts); a format 2 remote answers from its shard tables (test_shard_remote.py)."""
    make_format_1(tmp_path / "remote")
    return CountingRemote(tmp_path / "remote")


def add(store: Store, seed: str, size: int = 3000) -> Pointer:
    return store.insert_stream(io.BytesIO(random.Random(seed).randbytes(size)))


def pushed(store: Store, remote: CountingRemote, record: RemoteRecord, *pointers: Pointer) -> None:
    result = upload(store, remote, pointers, concurrency=1, record=record)
    assert result.ok, result.failed
    remote.asked.clear()


def look(store: Store, remote: CountingRemote, record: RemoteRecord, pointers: list[Pointer], trust: int | None):
    return confirm.look(remote, pointers, record, trust, 1, PackSizes(remote))


def test_a_push_records_what_it_wrote_and_a_trusting_look_asks_nothing(store, remote, tmp_path) -> None:
    record = RemoteRecord(tmp_path / "record.sqlite")
    objects = [add(store, str(i)) for i in range(5)]
    pushed(store, remote, record, *objects)

    seen = look(store, remote, record, objects, 7 * DAY)

    assert remote.asked == []
    assert seen.present() == {p.oid for p in objects}


def test_an_explicit_look_asks_about_everything_and_refreshes_the_record(store, remote, tmp_path) -> None:
    record = RemoteRecord(tmp_path / "record.sqlite")
    objects = [add(store, str(i)) for i in range(3)]
    pushed(store, remote, record, *objects)
    (remote.root / layout.manifest_key(objects[0].oid)).unlink()  # lost on the remote

    seen = look(store, remote, record, objects, None)

    assert sorted(remote.asked) == sorted(p.oid for p in objects)
    assert seen.present() == {p.oid for p in objects[1:]}
    assert record.known(remote.identity, objects, 0) == {p.oid for p in objects}  # a cache: rows are not dropped
    result = upload(store, remote, objects, concurrency=1, record=record)  # git mlx push: asks, repairs
    assert [p.oid for p in result.moved] == [objects[0].oid]


def test_rows_older_than_the_trust_horizon_are_asked_again(store, remote, tmp_path, monkeypatch) -> None:
    record = RemoteRecord(tmp_path / "record.sqlite")
    obj = add(store, "a")
    pushed(store, remote, record, obj)
    monkeypatch.setenv("GIT_MLX_NOW", str(NOW + 7 * DAY))

    look(store, remote, record, [obj], 7 * DAY)

    assert remote.asked == [obj.oid]
    remote.asked.clear()
    look(store, remote, record, [obj], 7 * DAY)  # the check refreshed the row
    assert remote.asked == []


def test_an_object_a_gc_note_lists_is_asked_about_and_never_recorded(store, remote, tmp_path) -> None:
    record = RemoteRecord(tmp_path / "record.sqlite")
    kept, marked = add(store, "kept"), add(store, "marked")
    pushed(store, remote, record, kept, marked)
    gc_marks.write_note(remote, "pending", store.tmp_dir, manifests=[marked.oid])
    record.forget(remote.identity, [marked.oid])

    seen = look(store, remote, record, [kept, marked], 7 * DAY)

    assert remote.asked == [marked.oid]
    assert seen.trusted == {kept.oid}
    assert record.known(remote.identity, [marked], 0) == set()


def test_a_row_for_a_marked_object_is_not_trusted(store, remote, tmp_path) -> None:
    record = RemoteRecord(tmp_path / "record.sqlite")
    obj = add(store, "a")
    pushed(store, remote, record, obj)
    gc_marks.write_note(remote, "pending", store.tmp_dir, manifests=[obj.oid])

    seen = look(store, remote, record, [obj], 7 * DAY)

    assert remote.asked == [obj.oid] and seen.trusted == set()


def test_a_remote_without_its_marker_forgets_every_row(store, remote, tmp_path) -> None:
    record = RemoteRecord(tmp_path / "record.sqlite")
    obj = add(store, "a")
    pushed(store, remote, record, obj)
    other = add(store, "other")
    record.add(remote.identity, [other], NOW)  # recorded, though this remote never had it
    (remote.root / layout.FORMAT_KEY).unlink()  # wiped (the rest of it left, to show the rows went)

    look(store, remote, record, [obj], 7 * DAY)

    assert remote.asked == [obj.oid]
    assert record.known(remote.identity, [obj, other], 0) == {obj.oid}  # asked again, and found


def test_a_row_with_another_size_or_remote_vouches_for_nothing(tmp_path) -> None:
    record = RemoteRecord(tmp_path / "record.sqlite")
    oid = "ab" * 32
    record.add("remote-a", [Pointer(oid, 10)], NOW)

    assert record.known("remote-a", [Pointer(oid, 10)], NOW) == {oid}
    assert record.known("remote-a", [Pointer(oid, 11)], 0) == set()
    assert record.known("remote-b", [Pointer(oid, 10)], 0) == set()
    assert record.known("remote-a", [Pointer(oid, 10)], NOW + 1) == set()


def test_a_damaged_record_is_moved_aside_and_starts_empty(tmp_path) -> None:
    path = tmp_path / "record.sqlite"
    record = RemoteRecord(path)
    record.add("r", [Pointer("cd" * 32, 5)], NOW)
    record.close()
    path.write_bytes(b"not a database" * 100)
    warned: list[str] = []

    again = RemoteRecord(path, warned.append)

    assert again.known("r", [Pointer("cd" * 32, 5)], 0) == set()
    assert len(warned) == 1 and "damaged" in warned[0]
    again.add("r", [Pointer("cd" * 32, 5)], NOW)
    assert again.known("r", [Pointer("cd" * 32, 5)], 0) == {"cd" * 32}


def test_a_bounded_look_asks_at_most_that_many_and_names_the_rest(store, remote, tmp_path) -> None:
    record = RemoteRecord(tmp_path / "record.sqlite")
    objects = [add(store, str(i)) for i in range(4)]
    pushed(store, remote, record, *objects)
    record.forget(remote.identity)

    seen = confirm.look(remote, objects, record, 7 * DAY, 1, PackSizes(remote), ask_at_most=3)

    assert remote.asked == [p.oid for p in objects[:3]]
    assert seen.unasked == {objects[3].oid}
    assert seen.present() == {p.oid for p in objects[:3]}
