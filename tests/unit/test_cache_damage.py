"""The chunk index is a cache: overwritten with garbage, cut short or opened by several
processes at once, it costs dedup and one warning, never the command."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from gitmlx.format.manifest import CODEC_RAW, ChunkRef
from gitmlx.store.chunk_index import ChunkIndex

REMOTE = "dir:/r"


def ref(i: int) -> ChunkRef:
    return ChunkRef(i.to_bytes(32, "big"), "ab" * 32, i * 10, 10, 10, CODEC_RAW)


def filled(path: Path, rows: int = 3000) -> None:
    index = ChunkIndex(path)
    index.add_remote_chunks(REMOTE, [ref(i) for i in range(rows)])
    index.close()


@pytest.mark.parametrize("damage", ["garbage", "cut"])
def test_a_damaged_index_is_set_aside_and_started_over(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "index.sqlite"
    filled(path)
    data = path.read_bytes()
    path.write_bytes(b"\x17garbage\x00" * 4096 if damage == "garbage" else data[: len(data) // 2])
    warned: list[str] = []
    index = ChunkIndex(path, warned.append)
    found = index.remote_chunks(REMOTE, [ref(i).hash for i in range(3000)])
    index.add_remote_chunks(REMOTE, [ref(1)])
    index.close()
    assert len(warned) == 1 and "damaged" in warned[0] and "index.sqlite" in warned[0]
    assert len(found) < 3000  # what was lost is lost: dedup, not correctness
    assert list(tmp_path.glob("index.sqlite.damaged-*"))
    again = ChunkIndex(path, warned.append)
    assert again.remote_chunk(REMOTE, ref(1).hash) == ref(1)
    again.close()
    assert len(warned) == 1


def _open_and_write(path: str, start, n: int) -> None:
    start.wait()
    index = ChunkIndex(Path(path))
    index.add_remote_chunks(REMOTE, [ref(n)])
    index.close()


def test_processes_creating_the_index_at_once_all_succeed(tmp_path: Path) -> None:
    """`PRAGMA journal_mode=WAL` is not covered by sqlite's busy timeout: opening a new file
    from several processes at once failed with 'database is locked' in some trials."""
    ctx = multiprocessing.get_context("fork")
    for trial in range(20):
        path = tmp_path / f"index-{trial}.sqlite"
        start = ctx.Event()
        procs = [ctx.Process(target=_open_and_write, args=(str(path), start, n)) for n in range(4)]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0], f"trial {trial}"
        db = sqlite3.connect(path)
        assert db.execute("SELECT COUNT(*) FROM remote_chunks").fetchone()[0] == 4
        db.close()
