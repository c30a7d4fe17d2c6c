"""Row counts of a dataset diff: rows before and after, added, removed and changed, and
the columns added, removed and changed, for CSV / TSV, JSONL and Parquet.

The counts need both sides at once, so this serves the external diff driver
(`diff.mlx.command`), which git hands both files; the textconv sees one side at a time.

Each row becomes a fixed-size record: a hash of its key (the key columns' values, or the
whole row when there is no key), a hash of the row, and, for tables with named columns,
a short hash per shared column. Rows are compared as multisets: a row on both sides is
unchanged wherever it moved; with a key, what is left of the same key on both sides is
"changed" (and the shared columns whose values differ are named), the rest added or
removed. Only the columns both sides have are compared, so adding a column does not turn
every row into a change: the column line says it.

Owns: choosing the key (configured, or a leading `id` column), hashing rows, and keeping
memory bounded: records stay in memory up to SPILL_RECORDS per side, then go to temporary
files split into BUCKETS by key hash, and the sides are compared one bucket at a time.
Must not: parse files itself (gitmlx.diffs.tables reads them, with its line caps), print,
or import pyarrow (tables does, for Parquet).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from gitmlx.diffs import tables

#: Records held in memory per side before they spill to bucket files.
SPILL_RECORDS = 200_000
#: Bucket files per side once spilled (one byte of the key hash picks the bucket).
BUCKETS = 256
#: Shared columns compared value by value (for naming changed columns); past this, only
#: whole rows are compared.
MAX_TRACKED_COLUMNS = 64
KEY_BYTES = 16
ROW_BYTES = 16
COLUMN_BYTES = 8
_MASK = 2**64 - 1

#: The key a table gets when none is configured: its first column, if it is named so.
OBVIOUS_KEY = "id"


@dataclass
class Table:
    """One side: its column names (None for JSONL, whose rows are free-form) and rows.

    A row is a list of rendered values aligned with `columns`, or for JSONL the pair
    (canonical JSON text, parsed value).
    """

    columns: list[str] | None
    rows: Iterator
    types: dict[str, str] = field(default_factory=dict)


@dataclass
class Counts:
    before: int = 0
    after: int = 0
    added: int = 0
    removed: int = 0
    changed: int = 0
    key: list[str] | None = None
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)
    columns_changed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The lines a diff leads with: the row counts, then the columns (when any moved)."""
        detail = f"+{self.added} \u2212{self.removed}"
        if self.key:
            detail += f" ~{self.changed} changed, key {','.join(self.key)}"
        out = [f"rows: {self.before} \u2192 {self.after} ({detail})"]
        parts = []
        if self.columns_added:
            parts.append("added " + ", ".join(self.columns_added))
        if self.columns_removed:
            parts.append("removed " + ", ".join(self.columns_removed))
        if self.columns_changed:
            parts.append("changed " + ", ".join(self.columns_changed))
        if parts:
            out.append("columns: " + "; ".join(parts))
        return out


def open_table(path: str | os.PathLike[str], kind: str) -> Table | None:
    """Side `path` of kind 'csv', 'tsv', 'jsonl' or 'parquet' as a Table; None when its
    rows cannot be read here (Parquet without pyarrow, or a row group too large)."""
    if kind in ("csv", "tsv"):
        records = tables.delimited_records(path, "," if kind == "csv" else "\t")
        header = next(records, None)
        return Table(header or [], records)
    if kind == "jsonl":
        return Table(None, tables.jsonl_records(path))
    if kind == "parquet":
        found = tables.parquet_table(path)
        if found is None:
            return None
        return Table(found[0], found[1], tables.parquet_types(path))
    return None


def empty_table(like: Table | None) -> Table:
    """The missing side of an added or deleted file: no rows, the other side's columns."""
    columns = None if like is None or like.columns is None else list(like.columns)
    return Table(columns, iter(()), dict(like.types) if like else {})


def choose_key(old: Table, new: Table, configured: list[str] | None) -> list[str] | None:
    """The key columns: `configured` when given (an empty list turns keys off), else a
    leading `id` column on both sides. For JSONL the key names top-level fields."""
    if configured is not None:
        if not configured:
            return None
        if old.columns is None or new.columns is None:
            return configured
        both = set(old.columns) & set(new.columns)
        return configured if all(c in both for c in configured) else None
    if old.columns is None or new.columns is None:
        return None
    lead = [t.columns[0] for t in (old, new) if t.columns]
    if lead and all(c.lower() == OBVIOUS_KEY for c in lead):
        return [lead[0]] if len({*lead}) == 1 else None
    return None


def compare(old: Table, new: Table, key: list[str] | None) -> Counts:
    """Count what changed between two sides, streaming each once."""
    counts = Counts(key=key)
    shared: list[str] = []
    if old.columns is not None and new.columns is not None:
        shared = [c for c in dict.fromkeys(old.columns) if c in set(new.columns)]
        counts.columns_added = [c for c in dict.fromkeys(new.columns) if c not in set(old.columns)]
        counts.columns_removed = [c for c in dict.fromkeys(old.columns) if c not in set(new.columns)]
    tracked = shared if key and len(shared) <= MAX_TRACKED_COLUMNS else []
    with _Side() as a, _Side() as b:
        counts.before = a.fill(_records(old, shared, tracked, key))
        counts.after = b.fill(_records(new, shared, tracked, key))
        differing: set[int] = set()
        for olds, news in _buckets(a, b):
            _compare_bucket(olds, news, counts, differing, len(tracked))
    retyped = [c for c in shared if c in old.types and c in new.types and old.types[c] != new.types[c]]
    counts.columns_changed = [c for i, c in enumerate(tracked) if i in differing or c in retyped]
    counts.columns_changed += [c for c in retyped if c not in counts.columns_changed]
    return counts


def _digest(values: list[str], size: int) -> bytes:
    """A hash of a list of values: of its repr, which quotes each value, so no two lists
    share one (one C-level call per row, where a call per value cost six times more)."""
    return hashlib.blake2b(repr(values).encode("utf-8", "surrogatepass"), digest_size=size).digest()


def _column_hashes(values: list[str], picks: list[int]) -> bytes:
    """8 bytes per tracked value: Python's own string hash, which is stable within this
    process (both sides are hashed here) and costs no call into hashlib."""
    width = len(values)
    return b"".join(((hash(values[i]) if i < width else 0) & _MASK).to_bytes(8, "little") for i in picks)


def _records(table: Table, shared: list[str], tracked: list[str], key: list[str] | None) -> Iterator[bytes]:
    """One fixed-size record per row: key hash, row hash, then a hash per tracked column."""
    if table.columns is None:
        for text, value in table.rows:
            row = _digest([text], ROW_BYTES)
            if key and isinstance(value, dict) and all(k in value for k in key):
                keyed = _digest([tables.canonical_json(value[k]) for k in key], KEY_BYTES)
            else:
                keyed = row
            yield keyed + row
        return
    index = {name: i for i, name in reversed(list(enumerate(table.columns)))}
    picks = [index[c] for c in shared]
    whole = picks == list(range(len(table.columns)))
    key_picks = [index[c] for c in key] if key else []
    track_picks = [index[c] for c in tracked]
    for values in table.rows:
        width = len(values)
        picked = values if whole and width == len(picks) else [values[i] if i < width else "" for i in picks]
        row = _digest(picked, ROW_BYTES)
        keyed = _digest([values[i] if i < width else "" for i in key_picks], KEY_BYTES) if key else row
        yield keyed + row + _column_hashes(values, track_picks)


class _Side:
    """The records of one side: in memory, or spilled to BUCKETS temporary files."""

    def __init__(self) -> None:
        self.memory: list[bytes] = []
        self.files: list[BinaryIO] | None = None
        self.width = 0

    def __enter__(self) -> _Side:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in self.files or ():
            f.close()

    def fill(self, records: Iterator[bytes]) -> int:
        count = 0
        for record in records:
            self.width = len(record)
            count += 1
            if self.files is not None:
                self.files[record[0] % BUCKETS].write(record)
                continue
            self.memory.append(record)
            if len(self.memory) > SPILL_RECORDS:
                self.spill()
        return count

    def spill(self) -> None:
        if self.files is None:
            self.files = [tempfile.TemporaryFile() for _ in range(BUCKETS)]  # noqa: SIM115 - closed in __exit__
        for record in self.memory:
            self.files[record[0] % BUCKETS].write(record)
        self.memory = []

    def bucket(self, b: int) -> list[bytes]:
        assert self.files is not None
        f = self.files[b]
        f.seek(0)
        data = f.read()
        width = self.width or 1
        return [data[i : i + width] for i in range(0, len(data), width)]


def _buckets(a: _Side, b: _Side) -> Iterator[tuple[list[bytes], list[bytes]]]:
    if a.files is None and b.files is None:
        yield a.memory, b.memory
        return
    a.spill()
    b.spill()
    for i in range(BUCKETS):
        yield a.bucket(i), b.bucket(i)


def _group(records: Sequence[bytes]) -> dict[bytes, list[bytes]]:
    out: dict[bytes, list[bytes]] = {}
    for record in records:
        out.setdefault(record[:KEY_BYTES], []).append(record[KEY_BYTES:])
    return out


def _compare_bucket(olds: list[bytes], news: list[bytes], counts: Counts, differing: set[int], tracked: int) -> None:
    """Rows of one bucket: identical rows cancel out; what is left under one key pairs up
    as changed rows (naming the tracked columns that differ), the rest is added or removed."""
    old_keys, new_keys = _group(olds), _group(news)
    for k in old_keys.keys() | new_keys.keys():
        before, after = old_keys.get(k, []), new_keys.get(k, [])
        if not before or not after:
            counts.removed += len(before)
            counts.added += len(after)
            continue
        if len(before) == len(after) == 1 and before[0][:ROW_BYTES] == after[0][:ROW_BYTES]:
            continue  # the usual row: one on each side, unchanged
        same = Counter(r[:ROW_BYTES] for r in before) & Counter(r[:ROW_BYTES] for r in after)
        left_old = _without(before, same)
        left_new = _without(after, same)
        paired = min(len(left_old), len(left_new))
        counts.changed += paired
        counts.removed += len(left_old) - paired
        counts.added += len(left_new) - paired
        for x, y in zip(left_old[:paired], left_new[:paired], strict=True):
            for c in range(tracked):
                lo, hi = ROW_BYTES + c * COLUMN_BYTES, ROW_BYTES + (c + 1) * COLUMN_BYTES
                if x[lo:hi] != y[lo:hi]:
                    differing.add(c)


def _without(records: list[bytes], same: Counter) -> list[bytes]:
    """`records` less the rows counted in `same` (each taken out as often as it is counted)."""
    left = Counter(same)
    out = []
    for r in records:
        h = r[:ROW_BYTES]
        if left[h] > 0:
            left[h] -= 1
        else:
            out.append(r)
    return out
