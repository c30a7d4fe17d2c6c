"""Remote format 2 through the transfer code: a push writes one shard and no manifest key,
its existence checks read shard tables instead of one request per object, reads find
manifests through shards and fall back to format-1 keys, a format 1 remote stays format 1,
and gc never takes a pack a shard's manifest names.

A directory remote (counting its requests) and real stores; no git.
"""

from __future__ import annotations

import io
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from gitmlx.format.pointer import Pointer
from gitmlx.maintenance.gc import collect_garbage
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.transfer import shards
from gitmlx.transfer.download import download
from gitmlx.transfer.upload import upload
from tests.support.formats import decode_manifest, decode_shard, manifest_key
from tests.support.remote_layout import (
    delete_manifest,
    make_format_1,
    manifest_keys,
    manifest_oids,
    new_process,
    read_manifest_bytes,
    remote_format,
    shard_paths,
    write_manifest_bytes,
)


class CountingRemote(LocalRemote):
    """Counts requests by kind and top folder: ('get', 'shards'), ('list', 'manifests')..."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls: Counter[tuple[str, str]] = Counter()

    def _count(self, kind: str, key: str) -> None:
        self.calls[(kind, key.split("/", 1)[0])] += 1

    def get(self, key, sink, offset=0, progress=None, length=None):  # type: ignore[override]
        self._count("get", key)
        super().get(key, sink, offset, progress, length)

    def read_range(self, key: str, start: int, length: int) -> bytes:
        self._count("get", key)
        return super().read_range(key, start, length)

    def list(self, prefix: str = ""):  # type: ignore[override]
        self._count("list", prefix)
        return super().list(prefix)

    def size(self, key: str) -> int | None:
        self._count("head", key)
        return super().size(key)

    def exists(self, key: str) -> bool:
        self._count("head", key)
        return super().exists(key)

    def put_file(self, key, path, progress=None, consume=False) -> None:  # type: ignore[override]
        self._count("put", key)
        super().put_file(key, path, progress, consume)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def remote(tmp_path: Path) -> CountingRemote:
    return CountingRemote(tmp_path / "remote")


def add_many(store: Store, n: int, seed: int = 0, size: int = 2000) -> list[Pointer]:
    rng = random.Random(seed)
    pointers = [store.insert_stream(io.BytesIO(rng.randbytes(size))) for _ in range(n)]
    store.sync()
    return pointers


def fetched(tmp_path: Path, remote: LocalRemote, pointers: list[Pointer]) -> Store:
    fresh = Store(tmp_path / f"fresh-{random.random()}")
    result = download(fresh, remote, pointers, concurrency=2)
    assert result.ok, result.failed
    return fresh


def test_a_push_to_a_new_remote_writes_format_2_one_shard_and_no_manifest_key(store, remote, tmp_path) -> None:
    pointers = [*add_many(store, 120), store.insert_stream(io.BytesIO(b""))]
    result = upload(store, remote, pointers, concurrency=2)
    assert result.ok, result.failed
    assert remote_format(remote.root) == 2
    assert len(shard_paths(remote.root)) == 1 and manifest_keys(remote.root) == []
    assert manifest_oids(remote.root) == {p.oid for p in pointers}
    assert remote.calls[("put", "shards")] == 1 and remote.calls[("put", "manifests")] == 0
    new_process()
    fresh = fetched(tmp_path, remote, pointers)
    assert all(fresh.has(p.oid) for p in pointers)


def test_existence_checks_read_shard_tables_not_one_request_per_object(store, remote) -> None:
    pointers = add_many(store, 300)
    assert upload(store, remote, pointers[:200], concurrency=2).ok
    new_process()
    remote.calls.clear()
    result = upload(store, remote, pointers, concurrency=2)  # 200 held, 100 new
    assert result.ok and len(result.skipped) == 200 and len(result.moved) == 100
    asked = {k: n for k, n in remote.calls.items() if k[1] in ("shards", "manifests")}
    # The listing of shards/, one read of the (small) shard and the new shard: nothing per
    # object, and no listing of manifests/ (the 100 new oids are missing from every table).
    assert asked == {("list", "shards"): 1, ("get", "shards"): 1, ("put", "shards"): 1}


def test_a_format_1_remote_is_written_as_format_1(store, remote, tmp_path) -> None:
    make_format_1(remote.root)
    pointers = add_many(store, 5)
    assert upload(store, remote, pointers, concurrency=1).ok
    assert remote_format(remote.root) == 1
    assert shard_paths(remote.root) == [] and len(manifest_keys(remote.root)) == 5
    assert remote.calls[("list", "shards")] == 0
    new_process()
    fetched(tmp_path, remote, pointers)


def test_format_1_keys_no_shard_names_are_read_and_counted_missing_by_a_pusher(store, remote, tmp_path) -> None:
    """Keys no shard names (here: a marker switched without the upgrade's copy; really, a
    format 1 pusher racing an upgrade) are still read, but a pusher does not list
    `manifests/` to find them: it uploads those objects again, into a shard."""
    make_format_1(remote.root)
    old = add_many(store, 3, seed=1)
    assert upload(store, remote, old, concurrency=1).ok
    (remote.root / "mlx-remote.json").write_bytes(b'{"format": 2, "tool": "gitmlx"}\n')
    new_process()
    fetched(tmp_path / "reader", remote, old)  # readers fall back to the keys
    new_process()
    remote.calls.clear()
    new = add_many(store, 2, seed=2)
    result = upload(store, remote, [*old, *new], concurrency=1)
    assert result.ok and len(result.moved) == 5 and not result.skipped
    assert remote.calls[("list", "manifests")] == 0
    assert len(manifest_keys(remote.root)) == 3 and len(shard_paths(remote.root)) == 1
    new_process()
    fetched(tmp_path, remote, [*old, *new])


def test_a_damaged_shard_entry_is_repaired_by_the_next_push(store, remote, tmp_path) -> None:
    pointers = add_many(store, 4)
    assert upload(store, remote, pointers, concurrency=1).ok
    bad = bytearray(read_manifest_bytes(remote.root, pointers[1].oid))
    bad[-1] ^= 1
    write_manifest_bytes(remote.root, pointers[1].oid, bytes(bad))
    new_process()
    result = upload(store, remote, pointers, concurrency=1)
    assert result.ok and [p.oid for p in result.moved] == [pointers[1].oid]
    # The push's shard, and the damaged one rewritten with the new manifest (as format 1
    # rewrites the key): no reader can pick the damaged entry first.
    assert len(shard_paths(remote.root)) == 2
    assert all(read_manifest_bytes(remote.root, p.oid) != bytes(bad) for p in pointers)
    for path in shard_paths(remote.root):
        assert bytes(bad) not in path.read_bytes()
    new_process()
    fetched(tmp_path, remote, pointers)


def test_a_missing_manifest_fails_that_object_alone(store, remote, tmp_path) -> None:
    pointers = add_many(store, 4)
    assert upload(store, remote, pointers, concurrency=1).ok
    delete_manifest(remote.root, pointers[2].oid)
    new_process()
    result = download(Store(tmp_path / "fresh"), remote, pointers, concurrency=1)
    assert set(result.failed) == {pointers[2].oid}
    assert "not on remote" in result.failed[pointers[2].oid][1]


def test_a_shard_replaced_since_the_listing_is_found_again(store, remote, tmp_path) -> None:
    pointers = add_many(store, 30)
    assert upload(store, remote, pointers, concurrency=1).ok
    new_process()
    first = Store(tmp_path / "first")
    assert download(first, remote, pointers[:1], concurrency=1).ok  # lists and reads the table
    # Another client merges the shard into a new one (same manifests, one more byte of
    # difference: the entries move) and deletes the old one.
    extra = add_many(store, 1, seed=9)
    other = LocalRemote(remote.root)
    make = upload(store, other, extra, concurrency=1)
    assert make.ok
    [a, b] = shard_paths(remote.root)
    merged = {o: read_manifest_bytes(remote.root, o) for o in manifest_oids(remote.root)}
    for path in (a, b):
        path.unlink()
    from tests.support.formats import encode_shard

    sizes = {p.oid: p.size for p in [*pointers, *extra]}
    data = encode_shard((o, sizes[o], m) for o, m in merged.items())
    import hashlib

    (remote.root / "shards" / f"{hashlib.sha256(data).hexdigest()}.shard").write_bytes(data)
    result = download(first, remote, pointers[1:], concurrency=1)  # same process: stale tables
    assert result.ok, result.failed


T0 = 1_700_000_000
DAY = 86400


def gc(remote: LocalRemote, reachable: set[str], tmp_path: Path, monkeypatch, at: int, confirm: bool = True):
    monkeypatch.setenv("GIT_MLX_NOW", str(at))
    new_process()
    return collect_garbage(LocalRemote(remote.root), reachable, tmp_path / "gc", DAY, confirm, 2)


def test_gc_compacts_a_shard_with_dead_entries_and_deletes_it_a_grace_period_later(
    store, remote, tmp_path, monkeypatch
) -> None:
    a, b, c = add_many(store, 3, size=50_000)
    assert upload(store, remote, [a, b, c], concurrency=1).ok
    [old] = shard_paths(remote.root)

    dry = gc(remote, {a.oid, b.oid}, tmp_path, monkeypatch, T0, confirm=False)
    assert list(dry.marked_shards) == [old.stem] and c.oid in dry.marked_manifests
    assert shard_paths(remote.root) == [old], "a dry run writes nothing"

    first = gc(remote, {a.oid, b.oid}, tmp_path, monkeypatch, T0)
    assert list(first.marked_shards) == [old.stem] and first.marked_packs == {}  # a and b still name the pack
    assert len(shard_paths(remote.root)) == 2 and manifest_oids(remote.root) == {a.oid, b.oid, c.oid}
    too_early = gc(remote, {a.oid, b.oid}, tmp_path, monkeypatch, T0 + DAY // 2)
    assert too_early.deleted_shards == {} and too_early.marked_shards == {}, "marked once, not again"

    later = gc(remote, {a.oid, b.oid}, tmp_path, monkeypatch, T0 + DAY)
    assert list(later.deleted_shards) == [old.stem] and c.oid in later.deleted_manifests
    assert manifest_oids(remote.root) == {a.oid, b.oid} and len(shard_paths(remote.root)) == 1
    new_process()
    fetched(tmp_path, remote, [a, b])
    result = download(Store(tmp_path / "lost"), remote, [c], concurrency=1)
    assert not result.ok and "not on remote" in result.failed[c.oid][1]


def test_a_pack_only_dead_entries_name_is_deleted_after_their_shard(store, remote, tmp_path, monkeypatch) -> None:
    keep = add_many(store, 1, seed=1, size=50_000)
    drop = add_many(store, 1, seed=2, size=50_000)
    assert upload(store, remote, keep, concurrency=1).ok
    assert upload(store, remote, drop, concurrency=1).ok  # its own pack and shard
    packs = {p.name for p in (remote.root / "packs").rglob("*.pack")}
    first = gc(remote, {keep[0].oid}, tmp_path, monkeypatch, T0)
    assert len(first.marked_shards) == 1 and len(first.marked_packs) == 1
    gc(remote, {keep[0].oid}, tmp_path, monkeypatch, T0 + DAY)
    assert len({p.name for p in (remote.root / "packs").rglob("*.pack")}) == len(packs) - 1
    new_process()
    fetched(tmp_path, remote, keep)


def test_a_push_of_an_object_only_a_marked_shard_holds_writes_it_again(store, remote, tmp_path, monkeypatch) -> None:
    """The object becomes reachable again after gc marked its shard: the pusher ignores the
    marked shard and writes the object (and its chunks: their pack is marked too) anew."""
    a, b = add_many(store, 2, size=50_000)
    assert upload(store, remote, [a], concurrency=1).ok
    assert upload(store, remote, [b], concurrency=1).ok
    gc(remote, {a.oid}, tmp_path, monkeypatch, T0)  # b's shard and pack are marked
    monkeypatch.setenv("GIT_MLX_NOW", str(T0 + 10))
    new_process()
    again = upload(store, remote, [a, b], concurrency=1)
    assert again.ok and [p.oid for p in again.moved] == [b.oid]
    gc(remote, {a.oid, b.oid}, tmp_path, monkeypatch, T0 + DAY)
    new_process()
    fetched(tmp_path, remote, [a, b])


def test_gc_racing_a_push_between_its_packs_and_its_shard_keeps_everything(store, remote, tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_MLX_NOW", str(T0))
    pointers = add_many(store, 3, size=50_000)
    original = remote.put_file

    def put_file(key, path, progress=None, consume=False):
        if key.startswith("shards/"):
            collect_garbage(LocalRemote(remote.root), set(), tmp_path / "gc", DAY, True, 2)  # marks the new pack
        original(key, path, progress, consume)

    remote.put_file = put_file  # type: ignore[method-assign]
    assert upload(store, remote, pointers, concurrency=1).ok
    report = gc(remote, {p.oid for p in pointers}, tmp_path, monkeypatch, T0 + DAY)
    assert report.deleted_packs == {} and report.deleted_shards == {}
    new_process()
    fetched(tmp_path, remote, pointers)


def test_a_shard_marked_while_its_object_became_reachable_is_rescued(store, remote, tmp_path, monkeypatch) -> None:
    """gc marked a shard whose object no ref reached; a ref reaches it again by the time the
    shard is due (pushed from a clone that trusted its record): gc rescues the entry."""
    a, b = add_many(store, 2, size=50_000)
    assert upload(store, remote, [a, b], concurrency=1).ok
    gc(remote, {a.oid}, tmp_path, monkeypatch, T0)
    report = gc(remote, {a.oid, b.oid}, tmp_path, monkeypatch, T0 + DAY)
    assert len(report.deleted_shards) == 1 and report.written_shards
    assert manifest_oids(remote.root) == {a.oid, b.oid}
    new_process()
    fetched(tmp_path, remote, [a, b])


def _refuse_shards(put_file):
    def put(key, path, progress=None, consume=False):
        if key.startswith("shards/"):
            raise OSError("no space left")
        return put_file(key, path, progress, consume)

    return put


def test_manifest_key_helper_matches_the_doc() -> None:
    assert manifest_key("ab" * 32).startswith("manifests/ab/ab/")


def test_a_pusher_past_the_bound_merges_the_smallest_shards(store, remote, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(shards, "COMPACT_ABOVE", 4)
    pointers = add_many(store, 12)
    stale = LocalRemote(remote.root)
    for i, p in enumerate(pointers):
        assert upload(store, remote, [p], concurrency=1).ok
        if i == 3:
            new_process()
            assert download(Store(tmp_path / "early"), stale, pointers[:1], concurrency=1).ok  # lists 4 shards
    assert len(shard_paths(remote.root)) <= 4
    assert manifest_oids(remote.root) == {p.oid for p in pointers}
    # A reader whose listing predates the merges finds every object (its shards are gone).
    result = download(Store(tmp_path / "late"), stale, pointers, concurrency=1)
    assert result.ok, result.failed
    new_process()
    fetched(tmp_path, remote, pointers)


def test_a_merge_never_takes_a_shard_gc_marked(store, remote, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(shards, "COMPACT_ABOVE", 2)
    a, b, c = add_many(store, 3, size=50_000)
    assert upload(store, remote, [a], concurrency=1).ok
    assert upload(store, remote, [b], concurrency=1).ok
    report = gc(remote, {a.oid}, tmp_path, monkeypatch, T0)  # b's shard marked
    [marked] = report.marked_shards
    new_process()
    assert upload(store, remote, [c], concurrency=1).ok
    assert (remote.root / "shards" / f"{marked}.shard").is_file()


def test_a_repair_rewrites_the_shard_that_named_a_truncated_pack(store, remote, tmp_path) -> None:
    """As a format 1 repair rewrites the key: no shard keeps the entry a reader could try
    first and fail on."""
    pointers = add_many(store, 3, size=50_000)
    assert upload(store, remote, pointers, concurrency=1).ok
    [pack] = list((remote.root / "packs").rglob("*.pack"))
    pack.chmod(0o644)
    os.truncate(pack, 60_000)
    new_process()
    repaired = upload(store, remote, pointers, concurrency=1)  # asks about everything
    moved = {p.oid for p in repaired.moved}
    assert repaired.ok and len(moved) == 2  # the first object lies before the cut
    for path in shard_paths(remote.root):
        data = path.read_bytes()
        for oid, _size, offset, length in decode_shard(data):
            if oid not in moved:
                continue
            packs = {c.pack for c in decode_manifest(data[offset : offset + length], oid)[1]}
            assert pack.stem not in packs, f"{oid[:10]} in {path.name[:10]} still names the truncated pack"
    new_process()
    fetched(tmp_path, remote, pointers)
