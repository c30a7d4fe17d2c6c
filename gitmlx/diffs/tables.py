"""Table summaries (CSV / TSV, JSONL, Parquet): one line per row, so git's diff shows rows
added and removed; Parquet also gets its schema and one line per column per row group,
so a changed column is named even when its rows are not shown.

Rows appear in a stable form: a CSV row re-written by the `csv` module (line breaks inside
a field shown as `\\n`), a JSONL row as compact JSON with sorted keys, a Parquet row
likewise. The first GIT_MLX_DIFF_MAX_ROWS rows (default 10 000) are shown; CSV and JSONL
rows after that are summarised in content-defined chunks (see `RowLines`), and the output
says so.

Owns: reading the tables as streams with bounded lines; pyarrow, imported only for a
Parquet file and optional (the `tables` extra).
Must not: load a table into memory; a Parquet row group is decoded for its rows only when
it is small (`PARQUET_ROWS_GROUP_LIMIT`).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from gitmlx.diffs.summary import MAX_ROWS_ENV, Malformed, clip, fallback, hash_range, max_rows, plural, quote, short

#: A longer physical line is not parsed: CSV gives up (size and hash only); a JSONL line is
#: shown as its length and hash.
MAX_LINE = 16 * 1024 * 1024
#: A row rendered longer than this shows its start plus the length and hash of all of it.
ROW_CHARS = 2000
#: JSONL header: the union of the top-level keys of the first rows.
KEY_SAMPLE_ROWS = 1000
#: Average rows per chunk past the cap, and the most a chunk may hold.
CHUNK_ROWS = 1000
MAX_CHUNK_ROWS = 8 * CHUNK_ROWS
#: Parquet rows are shown only when no row group is larger than this uncompressed.
PARQUET_ROWS_GROUP_LIMIT = 256 * 1024 * 1024


class RowLines:
    """Turns rows (already one line each) into output lines: the first `limit` rows as they
    are, then one line per chunk of rows.

    A chunk ends after a row whose CRC-32 is 0 modulo CHUNK_ROWS (or at MAX_CHUNK_ROWS
    rows): the boundaries depend on the rows themselves, not their positions, so adding or
    removing a row changes only the line of the chunk it falls in, and git's diff of two
    versions stays small. Each chunk line carries a sha256 of its rows.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.rows = 0
        self._chunk = None  # sha256 of the current chunk's rows, once one is open
        self._chunk_rows = 0
        self._chunk_first = ""

    def add(self, row: str) -> Sequence[str]:
        """The lines to print for `row` (usually the row itself, or nothing past the cap)."""
        self.rows += 1
        if self.rows <= self.limit:
            return (clip(row, ROW_CHARS),)
        lines = []
        if self.rows == self.limit + 1:
            lines.append(
                f"(rows after the first {self.limit} are summarised: one line per chunk of about {CHUNK_ROWS} rows,"
                f" cut where the content says, so an added or removed row changes only its chunk's line;"
                f" set {MAX_ROWS_ENV} to show more rows)"
            )
        data = row.encode("utf-8", "surrogatepass") + b"\n"
        if self._chunk is None:
            self._chunk, self._chunk_rows, self._chunk_first = hashlib.sha256(), 0, row
        self._chunk.update(data)
        self._chunk_rows += 1
        if zlib.crc32(data) % CHUNK_ROWS == 0 or self._chunk_rows >= MAX_CHUNK_ROWS:
            lines.append(self._end_chunk())
        return lines

    def _end_chunk(self) -> str:
        assert self._chunk is not None
        digest = short(self._chunk.hexdigest())
        self._chunk = None
        return f"(chunk: {plural(self._chunk_rows, 'row')}, {digest}, from {clip(self._chunk_first, 80)})"

    def finish(self) -> Iterator[str]:
        if self._chunk is not None:
            yield self._end_chunk()
        yield f"({plural(self.rows, 'row')})"


# --- CSV / TSV ---------------------------------------------------------------------------


def _bounded_lines(text: io.TextIOBase) -> Iterator[str]:
    while line := text.readline(MAX_LINE):
        if len(line) >= MAX_LINE and not line.endswith(("\n", "\r")):
            raise Malformed(f"a line is longer than {MAX_LINE} characters")
        yield line


class _CsvRow:
    """Renders parsed rows back to one line each, with the file's delimiter."""

    def __init__(self, delimiter: str) -> None:
        self._parts: list[str] = []
        self._writer = csv.writer(self, delimiter=delimiter, lineterminator="")

    def write(self, text: str) -> None:  # the file-like end of csv.writer
        self._parts.append(text)

    def _render(self, fields: list[str]) -> str:
        self._writer.writerow(fields)
        line = "".join(self._parts)
        self._parts.clear()
        return line

    def __call__(self, fields: list[str]) -> str:
        line = self._render(fields)
        if "\n" in line or "\r" in line:  # a line break inside a field: keep one row per line
            line = self._render([_escape_breaks(f) for f in fields])
        return line


def _escape_breaks(field: str) -> str:
    return field.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def delimited_records(path: str | os.PathLike[str], delimiter: str) -> Iterator[list[str]]:
    """The parsed records of a CSV / TSV file, header first, read line by line with lines
    capped at MAX_LINE (Malformed past it)."""
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(MAX_LINE)
    try:
        with open(path, "rb") as raw:
            # utf-8-sig drops a BOM; invalid bytes show as \\xNN, so a change to them still shows.
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="backslashreplace", newline="")
            yield from csv.reader(_bounded_lines(text), delimiter=delimiter)
    finally:
        csv.field_size_limit(previous_limit)


def _summarize_delimited(path: str | os.PathLike[str], delimiter: str, label: str) -> Iterator[str]:
    records = delimited_records(path, delimiter)
    render = _CsvRow(delimiter)
    header = next(records, None)
    if header is None:
        yield f"{label}: empty"
        return
    yield f"{label} columns: {clip(render(header), ROW_CHARS)}"
    rows = RowLines(max_rows())
    for fields in records:
        yield from rows.add(render(fields))
    yield from rows.finish()


def summarize_csv(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    return _summarize_delimited(path, ",", "csv")


def summarize_tsv(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    return _summarize_delimited(path, "\t", "tsv")


# --- JSONL -------------------------------------------------------------------------------


def _json_lines(f: BinaryIO) -> Iterator[tuple[str, bool]]:
    """Each non-blank line as (text, True); a line over MAX_LINE bytes is not parsed but
    given as (its length and hash, False)."""
    first = True
    while line := f.readline(MAX_LINE):
        if len(line) >= MAX_LINE and not line.endswith(b"\n"):
            digest = hashlib.sha256(line)
            total = len(line)
            while not line.endswith(b"\n") and (line := f.readline(MAX_LINE)):
                digest.update(line)
                total += len(line)
            yield f"(a line of {total} bytes, {short(digest.hexdigest())})", False
            first = False
            continue
        text = line.decode("utf-8", "backslashreplace").rstrip("\r\n")
        if first:
            text = text.removeprefix("\ufeff")
            first = False
        if text.strip():
            yield text, True


def _parse_json(text: str) -> tuple[str, object]:
    """(the row's canonical JSON, its value), or the text marked as not JSON."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return f"(not JSON) {text}", None
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str), value


def jsonl_records(path: str | os.PathLike[str]) -> Iterator[tuple[str, object]]:
    """Each row of a JSONL file as (its canonical text, its parsed value or None)."""
    with open(path, "rb") as f:
        for text, parse in _json_lines(f):
            yield _parse_json(text) if parse else (text, None)


def summarize_jsonl(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    with open(path, "rb") as f:
        keys: set[str] = set()
        for i, (text, parse) in enumerate(_json_lines(f)):
            if i >= KEY_SAMPLE_ROWS:
                break
            value = _parse_json(text)[1] if parse else None
            if isinstance(value, dict):
                keys.update(value)
        f.seek(0)
        shown = json.dumps(sorted(keys), ensure_ascii=False, separators=(",", ":"))
        yield f"jsonl keys (first {KEY_SAMPLE_ROWS} rows): {clip(shown, ROW_CHARS)}"
        rows = RowLines(max_rows())
        for text, parse in _json_lines(f):
            yield from rows.add(_parse_json(text)[0] if parse else text)
        yield from rows.finish()


# --- Parquet -----------------------------------------------------------------------------


def _value(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "backslashreplace")
    return clip(json.dumps(value, ensure_ascii=False, default=str), 60)


def summarize_parquet(path: str | os.PathLike[str], size: int) -> Iterator[str]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        yield "parquet: pyarrow is not installed, so only size and hash are shown (pip install 'gitmlx[tables]')"
        yield from fallback(path, size)
        return
    parquet = pq.ParquetFile(path)  # reads the footer only
    meta = parquet.metadata
    yield f"parquet: {plural(meta.num_columns, 'column')}, {plural(meta.num_row_groups, 'row group')}"
    for field in parquet.schema_arrow:
        yield f"column {quote(field.name)}: {field.type}{'' if field.nullable else ' not null'}"
    with open(path, "rb") as f:
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            yield f"row group {g}: {plural(group.num_rows, 'row')}"
            for c in range(group.num_columns):
                yield _column_chunk_line(f, size, g, group.column(c))
    limit = max_rows()
    groups_small = all(
        meta.row_group(g).total_byte_size <= PARQUET_ROWS_GROUP_LIMIT for g in range(meta.num_row_groups)
    )
    if limit and groups_small:
        shown = 0
        for batch in parquet.iter_batches(batch_size=1024, use_threads=False):
            for row in batch.to_pylist():
                if shown >= limit:
                    break
                yield clip(json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str))
                shown += 1
            if shown >= limit:
                break
        if meta.num_rows > shown:
            yield f"(rows after the first {shown} are not shown: the column hashes above cover them)"
    elif limit:
        yield "(rows are not shown: a row group is too large to decode here; the column hashes above cover them)"
    yield f"({plural(meta.num_rows, 'row')})"


def parquet_table(path: str | os.PathLike[str]) -> tuple[list[str], Iterator[list[str]]] | None:
    """The column names of a Parquet file and its rows, each value rendered as compact JSON;
    None when pyarrow is missing or a row group is too large to decode here."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return None
    parquet = pq.ParquetFile(path)
    meta = parquet.metadata
    if any(meta.row_group(g).total_byte_size > PARQUET_ROWS_GROUP_LIMIT for g in range(meta.num_row_groups)):
        return None
    names = list(parquet.schema_arrow.names)

    def rows() -> Iterator[list[str]]:
        for batch in parquet.iter_batches(batch_size=1024, use_threads=False):
            columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
            for values in zip(*columns, strict=True):
                yield [canonical_json(v) for v in values]

    return names, rows()


def parquet_types(path: str | os.PathLike[str]) -> dict[str, str]:
    """Column name → arrow type of a Parquet file (footer only); empty without pyarrow."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return {}
    return {field.name: str(field.type) for field in pq.ParquetFile(path).schema_arrow}


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _column_chunk_line(f: BinaryIO, size: int, group: int, column) -> str:
    """One column chunk: type, statistics, and a hash of its encoded bytes as stored.

    The bytes are hashed, not decoded, so this costs one read of the chunk and no memory;
    a column whose values did not change keeps its bytes when the same writer wrote both.
    """
    start = column.data_page_offset
    if column.has_dictionary_page and column.dictionary_page_offset:
        start = min(start, column.dictionary_page_offset)
    length = column.total_compressed_size
    if start < 4 or length < 0 or start + length > size:
        raise Malformed(f"column {column.path_in_schema!r} of row group {group} lies outside the file")
    digest = hash_range(f, start, length)
    parts = [f"row group {group} column {quote(column.path_in_schema)}: {column.physical_type}"]
    stats = column.statistics if column.is_stats_set else None
    if stats is not None:
        if stats.has_null_count:
            parts.append(f"nulls={stats.null_count}")
        if stats.has_min_max:
            parts.append(f"min={_value(stats.min)} max={_value(stats.max)}")
    parts.append(short(digest))
    return "  ".join(parts)
