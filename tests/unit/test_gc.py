"""gitmlx.maintenance.gc with the cooperating upload: two phases a grace period apart, and
no interleaving of a push with gc runs loses an object a ref reaches.

A directory remote and a real store; `reachable` stands for what refs reach (no git). The
clock is faked with GIT_MLX_NOW; each test names the moment a ref "lands". The remote is
format 1 (per-object manifest keys, what gc collects); gc of a format 2 remote, whose
shards it keeps whole, is in test_shard_remote.py.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from gitmlx.errors import RemoteError
from gitmlx.format import layout
from gitmlx.format.manifest import decode
from gitmlx.format.pointer import Pointer
from gitmlx.maintenance.gc import collect_garbage
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.transfer import gc_marks
from gitmlx.transfer.download import download
from gitmlx.transfer.upload import upload
from tests.support.remote_layout import make_format_1

DAY = 86400
T0 = 1_700_000_000


class Env:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        make_format_1(tmp_path / "remote")
        self.remote = PausingRemote(tmp_path / "remote")
        self.store = Store(tmp_path / "store")
        self.at(T0)

    def at(self, t: float) -> None:
        self.monkeypatch.setenv("GIT_MLX_NOW", str(int(t)))

    def add(self, seed: str, size: int = 400_000, prefix: bytes = b"") -> tuple[Pointer, bytes]:
        data = prefix + random.Random(seed).randbytes(size)
        return self.store.insert_stream(_Bytes(data)), data

    def push(self, *pointers: Pointer) -> None:
        # One chunking thread: objects pushed together share one pack, as these tests expect.
        result = upload(self.store, self.remote, pointers, concurrency=1)
        assert result.ok, result.failed

    def gc(self, reachable: set[str], grace: float = 0, confirm: bool = True):
        return collect_garbage(self.remote, {p for p in reachable}, self.tmp_path / "gc-tmp", grace, confirm, 2)

    def clone_bytes(self, pointer: Pointer) -> bytes:
        fresh = Store(self.tmp_path / f"clone-{pointer.oid[:8]}-{random.random()}")
        result = download(fresh, self.remote, [pointer], concurrency=1)
        assert result.ok, result.failed
        with fresh.open(pointer.oid) as f:
            return f.read()

    def manifest_packs(self, oid: str) -> set[str]:
        data = (self.remote.root / layout.manifest_key(oid)).read_bytes()
        size = int.from_bytes(data[40:48], "little")
        return set(decode(data, Pointer(oid, size)).packs())

    def packs(self) -> set[str]:
        return {layout.pack_id_from_key(e.key) for e in self.remote.list(layout.PACKS_PREFIX)} - {None}

    def has_manifest(self, oid: str) -> bool:
        return self.remote.exists(layout.manifest_key(oid))

    def files(self) -> dict[str, bytes]:
        root = self.remote.root
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n < 0 else self.pos + n
        chunk, self.pos = self.data[self.pos : end], min(end, len(self.data))
        return chunk


class PausingRemote(LocalRemote):
    """Runs `before_manifest` / `after_manifest` once, around the first manifest a push
    writes: the moments a concurrent gc can strike."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.before_manifest: Callable[[], None] | None = None
        self.after_manifest: Callable[[], None] | None = None
        self.on_exists: Callable[[], None] | None = None

    def exists(self, key: str) -> bool:
        found = super().exists(key)
        self._asked(key)
        return found

    def get(self, key, sink, *args, **kwargs) -> None:  # push reads a manifest to check it
        super().get(key, sink, *args, **kwargs)
        self._asked(key)

    def _asked(self, key: str) -> None:
        if self.on_exists and key.startswith(layout.MANIFESTS_PREFIX):
            hook, self.on_exists = self.on_exists, None
            hook()  # runs just after the answer, before the caller acts on it

    def put_file(self, key, path, progress=None, consume=False) -> None:
        is_manifest = key.startswith(layout.MANIFESTS_PREFIX)
        if is_manifest and self.before_manifest:
            hook, self.before_manifest = self.before_manifest, None
            hook()
        super().put_file(key, path, progress, consume)
        if is_manifest and self.after_manifest:
            hook, self.after_manifest = self.after_manifest, None
            hook()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    return Env(tmp_path, monkeypatch)


def test_gc_keys_round_trip_and_refuse_other_names() -> None:
    key = layout.gc_key("pending", T0, "0123456789abcdef")
    assert key == "gc/pending-20231114T221320Z-0123456789abcdef.json"
    assert layout.gc_note_from_key(key) == ("pending", T0)
    for other in ("gc/pending-x.json", "gc/other-20231114T221320Z-0123456789abcdef.json", "manifests/aa", key + "x"):
        assert layout.gc_note_from_key(other) is None
    with pytest.raises(ValueError):
        layout.gc_key("pending", T0, "../../x")


def test_dry_run_reports_the_bytes_it_would_free_and_changes_nothing(env: Env) -> None:
    keep, _ = env.add("keep")
    drop, _ = env.add("drop")
    env.push(keep, drop)
    before = env.files()

    report = env.gc({keep.oid}, confirm=False)

    assert env.files() == before
    assert set(report.marked_manifests) == {drop.oid}
    assert report.marked_packs == {}  # keep and drop share one pack, which keep still names
    assert report.marked_bytes == report.marked_manifests[drop.oid] > 0


def test_objects_go_only_after_the_grace_period_and_reachable_ones_never(env: Env) -> None:
    keep, keep_bytes = env.add("keep")
    env.push(keep)
    drop, _ = env.add("drop")
    env.push(drop)  # a second push: its own pack
    (drop_pack,) = env.manifest_packs(drop.oid)

    marked = env.gc({keep.oid}, grace=7 * DAY)
    assert marked.pending_note and set(marked.marked_manifests) == {drop.oid}
    assert set(marked.marked_packs) == {drop_pack}
    env.at(T0 + 6 * DAY)
    assert env.gc({keep.oid}, grace=7 * DAY).deleted_manifests == {}
    assert env.has_manifest(drop.oid)

    dry = env.gc({keep.oid}, grace=7 * DAY, confirm=False)
    assert dry.deleted_manifests == {} and dry.freed_bytes == 0  # the T0 + 6 note is not due either
    env.at(T0 + 7 * DAY)
    dry = env.gc({keep.oid}, grace=7 * DAY, confirm=False)
    assert set(dry.deleted_manifests) == {drop.oid} and set(dry.deleted_packs) == {drop_pack}
    assert env.has_manifest(drop.oid)

    done = env.gc({keep.oid}, grace=7 * DAY)
    assert done.freed_bytes == dry.freed_bytes > 0
    assert not env.has_manifest(drop.oid) and drop_pack not in env.packs()
    assert env.clone_bytes(keep) == keep_bytes
    assert not [k for k, kind, _ in gc_marks.list_notes(env.remote) if kind != "pending"]


def test_an_object_reachable_again_before_phase_two_is_kept(env: Env) -> None:
    obj, data = env.add("obj")
    env.push(obj)
    env.gc(set())  # marked: a branch was deleted
    report = env.gc({obj.oid})  # ...and pushed again before the grace period ran out
    assert report.deleted_manifests == {} and report.deleted_packs == {}
    assert env.clone_bytes(obj) == data
    assert all(kind != "pending" for _, kind, _ in gc_marks.list_notes(env.remote)), "spent notes remain"


def test_gc_around_a_push_between_its_pack_and_its_manifest_keeps_everything(env: Env) -> None:
    old, _ = env.add("old")
    env.push(old)
    new, data = env.add("new")
    runs = []
    # Pack uploaded, manifest not yet: gc marks the pack as unreferenced.
    env.remote.before_manifest = lambda: runs.append(env.gc({old.oid}))
    # Manifest written, ref not yet landed: the pack is due, but the new manifest names it.
    env.remote.after_manifest = lambda: runs.append(env.gc({old.oid}))
    env.push(new)

    (pack,) = env.manifest_packs(new.oid)
    assert pack in runs[0].marked_packs
    assert runs[1].deleted_packs == {} and runs[1].deleted_manifests == {}
    assert new.oid in runs[1].marked_manifests  # unreachable until its ref lands
    after_ref = env.gc({old.oid, new.oid})  # the ref landed
    assert after_ref.freed_bytes == 0 and after_ref.marked_manifests == {}
    assert env.clone_bytes(new) == data


def test_a_push_that_needs_a_marked_manifest_protects_it_until_its_ref_lands(env: Env) -> None:
    obj, data = env.add("obj")
    env.push(obj)
    (old_pack,) = env.manifest_packs(obj.oid)
    env.gc(set(), grace=DAY)  # marked at T0: its branch was deleted
    env.at(T0 + 2 * DAY)  # the same commit is pushed again (a new branch); the mark is due
    runs = []
    env.remote.after_manifest = lambda: runs.append(env.gc(set(), grace=DAY))  # ref not landed yet
    env.push(obj)

    assert runs[0].deleted_manifests == {}, "gc deleted a manifest a push in flight had just written"
    assert runs[0].deleted_packs == {}, "gc deleted a pack a push in flight had just written"
    keep = gc_marks.read_marks(env.remote, kinds=("keep",)).of("keep")
    assert {obj.oid} == set().union(*(n.manifests for n in keep))
    # The chunks were stored again; with the same chunks in the same order the new pack has
    # the old one's name, and then it must have been announced too.
    (new_pack,) = env.manifest_packs(obj.oid)
    assert new_pack != old_pack or old_pack in set().union(*(n.packs for n in keep))
    env.at(T0 + 3 * DAY)
    after = env.gc({obj.oid}, grace=DAY)  # the ref landed
    assert after.freed_bytes == 0 and after.marked_manifests == {}
    assert env.clone_bytes(obj) == data


def test_a_gc_deleting_while_a_push_checks_the_remote_cannot_fool_it(env: Env) -> None:
    obj, data = env.add("obj")
    env.push(obj)
    env.gc(set())  # marked: its branch was deleted; now the same commit is pushed again
    runs = []
    # gc phase 2 deletes the manifest just after the push learnt that the remote has it.
    env.remote.on_exists = lambda: runs.append(env.gc(set()))
    env.push(obj)

    assert obj.oid in runs[0].deleted_manifests
    assert env.has_manifest(obj.oid), "the push relied on a manifest gc had marked and then deleted"
    assert env.clone_bytes(obj) == data


def test_chunks_in_a_marked_pack_are_stored_again_not_reused(env: Env) -> None:
    gone, gone_bytes = env.add("gone")
    env.push(gone)
    (gone_pack,) = env.manifest_packs(gone.oid)
    env.gc(set())  # marks gone's manifest and pack
    shares, shares_bytes = env.add("extra", 100_000, prefix=gone_bytes)  # same leading chunks
    env.push(shares)

    assert gone_pack not in env.manifest_packs(shares.oid)
    report = env.gc({shares.oid})
    assert gone.oid in report.deleted_manifests and gone_pack in report.deleted_packs
    assert env.clone_bytes(shares) == shares_bytes


def test_a_pusher_waits_while_a_gc_is_deleting(env: Env) -> None:
    deleting = gc_marks.write_note(env.remote, "deleting", env.tmp_path / "t")
    slept = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        notes = [k for k, kind, _ in gc_marks.list_notes(env.remote) if kind == "keep"]
        assert notes, "the keep note must be written before waiting"
        env.remote.delete(deleting)  # gc finishes

    gc_marks.announce(env.remote, env.tmp_path / "t", manifests=["a" * 64], sleep=sleep)
    assert len(slept) == 1


def test_a_dead_gcs_deleting_note_does_not_block_pushers_forever(env: Env) -> None:
    gc_marks.write_note(env.remote, "deleting", env.tmp_path / "t", created=T0 - gc_marks.DELETING_TIMEOUT)
    gc_marks.announce(env.remote, env.tmp_path / "t", sleep=lambda s: pytest.fail("waited for a dead gc"))


def test_a_damaged_live_manifest_stops_pack_deletion(env: Env) -> None:
    live, _ = env.add("live")
    env.push(live)
    dead, _ = env.add("dead")
    env.push(dead)
    env.gc({live.oid})
    path = env.remote.root / layout.manifest_key(live.oid)
    path.chmod(0o644)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")

    report = env.gc({live.oid})
    assert report.damaged_manifests == [live.oid]
    assert report.deleted_packs == {} and report.marked_packs == {}
    assert dead.oid in report.deleted_manifests  # manifests need no pack table


def test_notes_from_a_newer_gitmlx_are_refused_by_push_and_gc(env: Env) -> None:
    obj, _ = env.add("obj")
    env.push(obj)
    key = layout.gc_key("pending", T0, "00000000000000ff")
    gc_marks.put_bytes(env.remote, key, json.dumps({"format": 2}).encode(), env.tmp_path / "t")
    other, _ = env.add("other")
    with pytest.raises(RemoteError, match="format 2"):
        upload(env.store, env.remote, [other])
    with pytest.raises(RemoteError, match="format 2"):
        env.gc({obj.oid})
