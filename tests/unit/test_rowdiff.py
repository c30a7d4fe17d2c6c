"""gitmlx.diffs.rowdiff: row counts of two sides of a dataset, in memory and spilled."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from gitmlx.diffs import rowdiff


def write_csv(path: Path, rows: list[tuple[int, str]]) -> Path:
    path.write_text("id,text\n" + "".join(f"{i},{t}\n" for i, t in rows))
    return path


def counts(tmp_path: Path, before: list[tuple[int, str]], after: list[tuple[int, str]], key=None) -> rowdiff.Counts:
    a = rowdiff.open_table(write_csv(tmp_path / "a.csv", before), "csv")
    b = rowdiff.open_table(write_csv(tmp_path / "b.csv", after), "csv")
    assert a is not None and b is not None
    return rowdiff.compare(a, b, rowdiff.choose_key(a, b, key))


def test_moved_rows_are_unchanged_and_duplicates_count_as_often_as_they_occur(tmp_path: Path) -> None:
    before = [(1, "a"), (2, "b"), (2, "b"), (3, "c")]
    after = [(3, "c"), (2, "b"), (1, "a")]
    c = counts(tmp_path, before, after, key=[])
    assert (c.before, c.after, c.added, c.removed, c.changed) == (4, 3, 0, 1, 0)


@pytest.mark.parametrize("spill", [False, True])
def test_spilled_and_in_memory_comparisons_agree(tmp_path: Path, monkeypatch, spill: bool) -> None:
    if spill:
        monkeypatch.setattr(rowdiff, "SPILL_RECORDS", 50)
    rng = random.Random(7)
    before = [(i, f"t{i}") for i in range(3000)]
    removed = set(rng.sample(range(3000), 40))
    edited = set(rng.sample(sorted(set(range(3000)) - removed), 25))
    after = [(i, "new" if i in edited else t) for i, t in before if i not in removed]
    after += [(i, f"t{i}") for i in range(3000, 3100)]
    rng.shuffle(after)
    c = counts(tmp_path, before, after)
    assert c.key == ["id"]
    assert (c.before, c.after, c.added, c.removed, c.changed) == (3000, 3060, 100, 40, 25)
    assert c.columns_changed == ["text"]
    assert c.lines()[0] == "rows: 3000 \u2192 3060 (+100 \u221240 ~25 changed, key id)"


def test_spilling_keeps_only_a_bucket_in_memory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(rowdiff, "SPILL_RECORDS", 100)
    seen: list[int] = []
    original = rowdiff._compare_bucket

    def spy(olds, news, *args):
        seen.append(len(olds) + len(news))
        return original(olds, news, *args)

    monkeypatch.setattr(rowdiff, "_compare_bucket", spy)
    rows = [(i, f"t{i}") for i in range(20_000)]
    c = counts(tmp_path, rows, rows[1:])
    assert (c.removed, c.added) == (1, 0)
    assert len(seen) == rowdiff.BUCKETS and max(seen) < 40_000 / 50


def test_a_column_added_is_named_and_rows_compare_on_the_shared_columns(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,x\n1,a\n2,b\n")
    (tmp_path / "b.csv").write_text("id,x,y\n1,a,9\n2,b,9\n3,c,9\n")
    a, b = rowdiff.open_table(tmp_path / "a.csv", "csv"), rowdiff.open_table(tmp_path / "b.csv", "csv")
    c = rowdiff.compare(a, b, rowdiff.choose_key(a, b, None))
    assert c.lines() == ["rows: 2 \u2192 3 (+1 \u22120 ~0 changed, key id)", "columns: added y"]


def test_a_configured_key_missing_from_a_side_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("k,x\n1,a\n")
    (tmp_path / "b.csv").write_text("j,x\n1,a\n")
    a, b = rowdiff.open_table(tmp_path / "a.csv", "csv"), rowdiff.open_table(tmp_path / "b.csv", "csv")
    assert rowdiff.choose_key(a, b, ["k"]) is None
