"""The shard directory's lookup over its compact tables: oids whose first 8 bytes agree
(the bisect key) are told apart by the whole oid, an oid several shards hold is found in
each, and a shard read back by another process finds the same places as its writer.

A directory remote and real shards; no git.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gitmlx.remotes.local import LocalRemote
from gitmlx.transfer.shards import RANGED_BEFORE_WHOLE, WHOLE_BELOW, ShardDirectory


def oid(prefix: str, tail: int) -> str:
    return prefix + f"{tail:048x}"


def test_lookup_tells_apart_oids_sharing_the_key_and_finds_every_shard(tmp_path: Path) -> None:
    remote = LocalRemote(tmp_path / "remote")
    same = [oid("ab" * 8, n) for n in (1, 2, 3, 7)]
    other = [oid(f"{n:02x}" * 8, n) for n in (0x10, 0xF0)]
    first = [(o, i, bytes([i]) * 100) for i, o in enumerate(same + other)]
    second = [(same[1], 1, bytes([99]) * 120)]
    writer = ShardDirectory(remote)
    ids = writer.write(first, tmp_path / "tmp") + writer.write(second, tmp_path / "tmp")
    reader = ShardDirectory(remote)
    for directory in (writer, reader):
        for i, o in enumerate(same + other):
            # The places come in the order the shards were learnt (a reader's listing
            # order is the remote's): the first shard's entry is looked for by its id.
            places = [p for p in directory.places(o) if p.shard_id == ids[0]]
            assert [(p.shard_id, p.size) for p in places] == [(ids[0], i)]
            assert bytes(directory.manifest_bytes(places[0])) == bytes([i]) * 100
        assert sorted(p.shard_id for p in directory.places(same[1])) == sorted(ids)
        assert directory.places(oid("ab" * 8, 5)) == [] and directory.places(oid("ff" * 8, 0)) == []
        assert sorted(o for o, _ in directory.entries()) == sorted([*same, *other, same[1]])


def test_a_directory_that_let_go_of_its_shards_still_finds_every_manifest(tmp_path: Path) -> None:
    remote = LocalRemote(tmp_path / "remote")
    oids = [oid(f"{n:02x}" * 8, n) for n in range(1, 40)]
    ShardDirectory(remote).write([(o, i, bytes([i]) * 150) for i, o in enumerate(oids)], tmp_path / "tmp")
    reader = ShardDirectory(remote)
    for o in oids:  # past RANGED_BEFORE_WHOLE reads the whole shard is held
        reader.manifest_bytes(reader.places(o)[0])
    assert reader._held_bytes > 0

    reader.release()

    assert reader._held == {} and reader._held_bytes == 0
    assert all(isinstance(table.table, bytes) for table in reader._tables.values())
    for i, o in enumerate(oids):
        assert bytes(reader.manifest_bytes(reader.places(o)[0])) == bytes([i]) * 150


def test_workers_asking_for_one_shard_at_once_read_it_whole_once(tmp_path: Path) -> None:
    """Without the one-read-at-a-time rule, every worker that passed the ranged reads read
    the whole shard itself: the barrier lets them all in at once, then each one counts."""
    workers = 4

    class WholeReads(LocalRemote):
        def __init__(self, root: Path) -> None:
            super().__init__(root)
            self.whole: list[str] = []
            self.together = threading.Barrier(workers)

        def read_range(self, key: str, offset: int, length: int) -> bytes:
            if key.startswith("shards/") and offset == 0 and length > WHOLE_BELOW:
                try:
                    self.together.wait(timeout=1)  # all at once, unless only one may read
                except threading.BrokenBarrierError:
                    pass
                self.whole.append(key)
            return super().read_range(key, offset, length)

    remote = WholeReads(tmp_path / "remote")
    oids = [oid(f"{n:02x}" * 8, n) for n in range(1, 60)]
    size = WHOLE_BELOW // 40  # a shard too large to read whole when listed
    ShardDirectory(remote).write([(o, i, bytes([i]) * size) for i, o in enumerate(oids)], tmp_path / "tmp")
    reader = ShardDirectory(remote)
    for o in oids[:RANGED_BEFORE_WHOLE]:
        reader.manifest_bytes(reader.places(o)[0])
    remote.whole.clear()

    with ThreadPoolExecutor(workers) as pool:
        got = list(pool.map(lambda o: bytes(reader.manifest_bytes(reader.places(o)[0])), oids[10 : 10 + workers]))

    assert got == [bytes([i]) * size for i in range(10, 10 + workers)]
    assert len(remote.whole) == 1
