"""gc notes written by someone else on the remote: nothing in `gc/` may crash a push or a
gc, or hold a push up without saying why (docs/storage-format.md, "Garbage collection")."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitmlx.format import layout
from gitmlx.maintenance.gc import collect_garbage
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.transfer import gc_marks
from gitmlx.transfer.upload import upload

T0 = 1_700_000_000


@pytest.fixture
def remote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalRemote:
    monkeypatch.setenv("GIT_MLX_NOW", str(T0))
    return LocalRemote(tmp_path / "remote")


def put(remote: LocalRemote, kind: str, created: int, body: bytes, token: str = "00000000000000aa") -> str:
    key = layout.gc_key(kind, created, token)
    path = remote.root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return key


def test_a_deeply_nested_pending_note_is_unreadable_not_a_crash(tmp_path: Path, remote: LocalRemote) -> None:
    key = put(remote, "pending", T0, b"[" * 5000 + b"]" * 5000)
    marks = gc_marks.read_marks(remote)
    assert marks.unreadable == [key]
    store = Store(tmp_path / "store")
    pointer = store.insert_stream(io.BytesIO(random.Random(1).randbytes(50_000)))
    assert upload(store, remote, [pointer]).ok  # the push goes on
    report = collect_garbage(remote, {pointer.oid}, tmp_path / "gc", 0, True, 2)
    assert key in report.unreadable_notes


def test_a_deleting_note_from_the_future_neither_stalls_a_push_nor_outlives_gc(
    tmp_path: Path, remote: LocalRemote
) -> None:
    future = put(remote, "deleting", T0 + 75 * 365 * 86400, b"")
    assert gc_marks.active_deleting(remote) == []
    gc_marks.announce(remote, tmp_path / "t", sleep=lambda s: pytest.fail("waited for a note from 2099"))
    store = Store(tmp_path / "store")
    pointer = store.insert_stream(io.BytesIO(random.Random(2).randbytes(50_000)))
    assert upload(store, remote, [pointer]).ok  # a push does not wait for it either
    collect_garbage(remote, {pointer.oid}, tmp_path / "gc", 0, True, 2)
    assert not (remote.root / future).exists()


def test_a_deleting_note_a_little_ahead_still_counts(tmp_path: Path, remote: LocalRemote) -> None:
    """Clocks differ between machines: a gc whose clock runs a minute ahead is still waited for."""
    key = put(remote, "deleting", T0 + 60, b"")
    told: list[str] = []

    def sleep(seconds: float) -> None:
        (remote.root / key).unlink()  # the gc finishes

    gc_marks.announce(remote, tmp_path / "t", sleep=sleep, waiting=told.append)
    assert len(told) == 1 and key in told[0] and "gc --remote" in told[0]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=400) | st.text(max_size=200).map(str.encode))
def test_any_note_body_is_read_or_listed_as_unreadable(remote: LocalRemote, body: bytes) -> None:
    for kind in ("pending", "keep"):
        put(remote, kind, T0, body)
    try:
        marks = gc_marks.read_marks(remote, kinds=("pending", "keep"))
    except Exception as exc:  # noqa: BLE001 - only a newer gitmlx's note may refuse, by name
        assert "format" in str(exc), exc
    else:
        assert len(marks.notes) + len(marks.unreadable) == 2
