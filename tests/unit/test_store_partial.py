"""ObjectWriter with `resume_as`: a download's partial file survives an interruption, and a
later writer keeps only the prefix whose pieces verify, so a resumed download can never
name wrong bytes (the whole object is still hashed on commit)."""

from __future__ import annotations

import hashlib
import os
import random
import time

import pytest

from gitmlx.errors import IntegrityError
from gitmlx.format.pointer import Pointer
from gitmlx.store.objects import Store

PIECE = 64 * 1024


def pieces_of(data: bytes) -> list[tuple[int, bytes]]:
    cuts = [data[i : i + PIECE] for i in range(0, len(data), PIECE)]
    return [(len(cut), hashlib.sha256(cut).digest()) for cut in cuts]


def interrupted(store: Store, data: bytes, oid: str, upto: int) -> None:
    """A download of `data` that stopped (an exception) after `upto` bytes."""
    with pytest.raises(KeyError), store.writer(durable=False, resume_as=oid) as writer:
        writer.write(data[:upto])
        raise KeyError("interrupted")


def test_a_resumed_writer_keeps_the_verified_prefix_and_commits_the_object(store: Store) -> None:
    data = random.Random(1).randbytes(10 * PIECE + 17)
    pointer = Pointer(hashlib.sha256(data).hexdigest(), len(data))
    interrupted(store, data, pointer.oid, 4 * PIECE + 100)  # 4 whole pieces and a torn one
    partial = store.tmp_dir / f"partial-{pointer.oid}"
    assert partial.stat().st_size == 4 * PIECE + 100

    with store.writer(durable=False, resume_as=pointer.oid) as writer:
        assert writer.resume_prefix(pieces_of(data)) == (4, 4 * PIECE)
        writer.write(data[4 * PIECE :])
        writer.commit(pointer)
    assert store.path(pointer.oid).read_bytes() == data
    assert not partial.exists()


def test_a_partial_file_with_wrong_bytes_is_not_kept(store: Store) -> None:
    data = random.Random(2).randbytes(6 * PIECE)
    pointer = Pointer(hashlib.sha256(data).hexdigest(), len(data))
    bad = bytearray(data)
    bad[PIECE + 5] ^= 1  # the second piece is damaged
    interrupted(store, bytes(bad), pointer.oid, 4 * PIECE)
    with store.writer(durable=False, resume_as=pointer.oid) as writer:
        assert writer.resume_prefix(pieces_of(data)) == (1, PIECE)
        writer.write(data[PIECE:])
        writer.commit(pointer)
    assert store.path(pointer.oid).read_bytes() == data


def test_pieces_that_lie_cannot_make_a_wrong_object(store: Store) -> None:
    """Claims that match the partial bytes but not the object: commit refuses, and the
    partial file is dropped rather than kept for the next run."""
    data = random.Random(3).randbytes(4 * PIECE)
    pointer = Pointer(hashlib.sha256(data).hexdigest(), len(data))
    lie = b"\0" * (4 * PIECE)
    interrupted(store, lie, pointer.oid, 2 * PIECE)
    with store.writer(durable=False, resume_as=pointer.oid) as writer:
        assert writer.resume_prefix(pieces_of(lie)) == (2, 2 * PIECE)
        writer.write(data[2 * PIECE :])
        with pytest.raises(IntegrityError):
            writer.commit(pointer)
    assert not store.has(pointer.oid)
    assert not (store.tmp_dir / f"partial-{pointer.oid}").exists()


def test_a_second_writer_of_the_same_download_uses_its_own_file(store: Store) -> None:
    data = random.Random(4).randbytes(3 * PIECE)
    pointer = Pointer(hashlib.sha256(data).hexdigest(), len(data))
    with store.writer(durable=False, resume_as=pointer.oid) as first:
        first.write(data[:PIECE])
        with store.writer(durable=False, resume_as=pointer.oid) as second:
            assert second.resume_prefix(pieces_of(data)) == (0, 0)  # the file is locked by `first`
            assert second.tmp_path != first.tmp_path
            second.write(data)
            second.commit(pointer)
        first.write(data[PIECE:])
        first.commit(pointer)  # already stored: fine
    assert store.path(pointer.oid).read_bytes() == data
    assert list(store.tmp_dir.iterdir()) == []


def test_the_sweep_removes_upload_journals_too_old_to_resume_and_keeps_fresh_ones(store: Store) -> None:
    journals = store.root / "uploads"
    journals.mkdir(parents=True)
    old, fresh = journals / f"{'a' * 40}.jsonl", journals / f"{'b' * 40}.jsonl"
    old.write_text("{}\n")
    fresh.write_text("{}\n")
    stale = time.time() - 2 * 86400
    os.utime(old, (stale, stale))
    assert store.sweep_tmp() == (1, 3)
    assert not old.exists() and fresh.exists()
