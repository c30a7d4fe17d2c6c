"""CopiedRanges: pack ranges copied into the work tree leave the page cache in few calls,
never the most recent COPIED_LAG bytes."""

from __future__ import annotations

import os

import pytest

from gitmlx.store import blockio

pytestmark = pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no posix_fadvise here")


def _dropped(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    calls: list[tuple[int, int, int]] = []
    monkeypatch.setattr(os, "posix_fadvise", lambda fd, offset, size, advice: calls.append((fd, offset, size)))
    return calls


def test_neighbouring_small_objects_leave_in_one_call_per_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _dropped(monkeypatch)
    ranges = blockio.CopiedRanges()
    header, size, count = 40, 16384, 4096  # 64 MiB of 16 KiB objects, a record header apart
    for k in range(count):
        ranges.add(7, k * (header + size) + header, size)
    assert 40 <= len(calls) <= 60  # ~48 MiB dropped, in ranges of up to 1 MiB
    covered = sum(c[2] for c in calls)
    left = count * (header + size) - covered
    assert blockio.COPIED_LAG - blockio.MERGE_LIMIT <= left <= blockio.COPIED_LAG + blockio.MERGE_LIMIT
    ends = [c[1] + c[2] for c in calls]
    assert [c[1] for c in calls[1:]] == [e + header for e in ends[:-1]]  # in order, nothing twice


def test_ranges_of_other_files_or_far_apart_are_not_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _dropped(monkeypatch)
    ranges = blockio.CopiedRanges()
    big = blockio.COPIED_LAG
    ranges.add(3, 0, 1000)
    ranges.add(4, 1000, 1000)  # another file
    ranges.add(4, 1000 + 1000 + blockio.MERGE_GAP + 1, 1000)  # too far from the last
    ranges.add(5, 0, big)  # pushes the three out
    assert calls == [(3, 0, 1000), (4, 1000, 1000), (4, 2000 + blockio.MERGE_GAP + 1, 1000)]
