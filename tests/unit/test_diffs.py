"""gitmlx.diffs: the summaries the `diff=mlx` textconv driver prints.

Files are written by small stdlib writers below (so these tests need neither numpy nor
safetensors) and, where those packages are installed, by them too, to check that the
hand-written format knowledge matches the real thing.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitmlx import cli
from gitmlx.diffs import numpy_files, tables
from gitmlx.diffs import safetensors as safetensors_diff
from gitmlx.diffs import summary as diffs

OID = hashlib.sha256(b"hello").hexdigest()


def summary(path: Path) -> list[str]:
    return list(diffs.summarize(path))


def changed(before: list[str], after: list[str]) -> tuple[set[str], set[str]]:
    """Lines only in `before` (what git shows as '-') and only in `after` ('+')."""
    return set(before) - set(after), set(after) - set(before)


# --- writers -----------------------------------------------------------------------------


def write_safetensors(
    path: Path, tensors: dict[str, tuple[str, list[int], bytes]], metadata: dict[str, str] | None = None
) -> Path:
    """A safetensors file: {name: (dtype, shape, raw bytes)} in the given order."""
    header: dict[str, object] = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, (dtype, shape, data) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"".join(t[2] for t in tensors.values()))
    return path


def f32(*values: float) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def npy_bytes(descr: str, shape: tuple[int, ...], data: bytes, fortran: bool = False, major: int = 1) -> bytes:
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    body = text.encode("latin-1")
    prefix = 6 + 2 + (2 if major == 1 else 4)
    body += b" " * (-(prefix + len(body) + 1) % 64) + b"\n"
    length = struct.pack("<H", len(body)) if major == 1 else struct.pack("<I", len(body))
    return b"\x93NUMPY" + bytes([major, 0]) + length + body + data


MODEL = {
    "encoder.weight": ("F32", [2, 2], f32(1, 2, 3, 4)),
    "encoder.bias": ("F32", [2], f32(0, 0)),
    "head.weight": ("F16", [4], b"\x00\x3c" * 4),
}


# --- safetensors ---------------------------------------------------------------------------


def test_safetensors_lists_each_tensor_sorted_with_dtype_shape_and_hash(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", MODEL, {"format": "pt"})
    lines = summary(path)
    digest = hashlib.sha256(f32(1, 2, 3, 4)).hexdigest()[:16]
    half = hashlib.sha256(MODEL["head.weight"][2]).hexdigest()[:16]

    assert lines == [
        "safetensors: 3 tensors, 32 B of tensor data",
        "__metadata__ format: pt",
        f"encoder.bias  F32  [2]  sha256:{hashlib.sha256(f32(0, 0)).hexdigest()[:16]}",
        f"encoder.weight  F32  [2, 2]  sha256:{digest}",
        f"head.weight  F16  [4]  sha256:{half}",
    ]


def test_safetensors_changed_values_change_only_that_tensors_line(tmp_path: Path) -> None:
    before = summary(write_safetensors(tmp_path / "a.safetensors", MODEL))
    model = dict(MODEL, **{"encoder.weight": ("F32", [2, 2], f32(1, 2, 3, 5))})
    after = summary(write_safetensors(tmp_path / "b.safetensors", model))

    removed, added = changed(before, after)
    assert [line.split()[0] for line in removed] == ["encoder.weight"]
    assert [line.split()[0] for line in added] == ["encoder.weight"]


def test_safetensors_added_removed_reshaped_and_retyped_tensors_each_show(tmp_path: Path) -> None:
    before = summary(write_safetensors(tmp_path / "a.safetensors", MODEL))
    model = {
        "encoder.weight": ("F32", [4], f32(1, 2, 3, 4)),  # reshaped, same bytes
        "encoder.bias": ("I32", [2], b"\x00" * 8),  # dtype changed, same bytes
        "decoder.weight": ("F32", [1], f32(7)),  # added; head.weight removed
    }
    after = summary(write_safetensors(tmp_path / "b.safetensors", model))

    removed, added = changed(before, after)
    names = lambda lines: sorted(line.split()[0] for line in lines if not line.startswith("safetensors:"))  # noqa: E731
    assert names(removed) == ["encoder.bias", "encoder.weight", "head.weight"]
    assert names(added) == ["decoder.weight", "encoder.bias", "encoder.weight"]
    assert "encoder.weight  F32  [4]" in "\n".join(added)
    assert "encoder.bias  I32  [2]" in "\n".join(added)


def test_safetensors_hashes_tensors_larger_than_one_block_exactly(tmp_path: Path) -> None:
    big = bytes(range(256)) * (diffs.BLOCK // 256 * 2 + 7)  # spans three 1 MiB reads
    path = write_safetensors(tmp_path / "big.safetensors", {"w": ("U8", [len(big)], big), "b": ("U8", [1], b"x")})
    assert summary(path)[1:] == [
        f"b  U8  [1]  sha256:{hashlib.sha256(b'x').hexdigest()[:16]}",
        f"w  U8  [{len(big)}]  sha256:{hashlib.sha256(big).hexdigest()[:16]}",
    ]


def test_safetensors_names_that_are_not_one_word_are_quoted(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", {"two words": ("U8", [1], b"x"), "": ("U8", [1], b"y")})
    lines = summary(path)
    assert lines[1].startswith('""  U8')
    assert lines[2].startswith('"two words"  U8')


def test_safetensors_written_by_the_safetensors_package_is_read_the_same(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    st_numpy = pytest.importorskip("safetensors.numpy")
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    st_numpy.save_file({"w": weight, "b": np.zeros(3, np.float16)}, str(tmp_path / "m.safetensors"), {"k": "v"})
    lines = summary(tmp_path / "m.safetensors")
    assert lines[0] == "safetensors: 2 tensors, 30 B of tensor data"
    assert lines[1] == "__metadata__ k: v"
    assert lines[3] == f"w  F32  [2, 3]  sha256:{hashlib.sha256(weight.tobytes()).hexdigest()[:16]}"


@pytest.mark.parametrize(
    "header, reason",
    [
        (b"[1, 2]", "not a JSON object"),
        (b"{not json", "not JSON"),
        (b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 99]}}', "outside"),
        (b'{"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}', "needs 12 bytes"),
        (b'{"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}', "shape"),
        (b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}', "outside"),
        (b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [true, 8]}}', "data_offsets"),
        (b'{"w": {"shape": [2], "data_offsets": [0, 8]}}', "no dtype"),
        (b'{"__metadata__": [1]}', "__metadata__"),
    ],
)
def test_malformed_safetensors_falls_back_to_size_and_hash(tmp_path: Path, header: bytes, reason: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 8)
    lines = summary(path)
    assert lines[0].startswith("(not a readable safetensors file:") and reason in lines[0]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert lines[1] == f"binary data: {path.stat().st_size} bytes ({path.stat().st_size} B), sha256:{digest}"


def test_safetensors_header_over_the_cap_is_refused_without_reading_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(diffs, "MAX_SAFETENSORS_HEADER", 16)
    monkeypatch.setattr(safetensors_diff, "MAX_SAFETENSORS_HEADER", 16)
    path = write_safetensors(tmp_path / "m.safetensors", MODEL)
    lines = summary(path)
    assert "over the 16 B limit" in lines[0]
    assert lines[1].startswith("binary data:")


def test_safetensors_header_longer_than_the_file_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 10**6) + b"{}")
    assert "runs past the end" in summary(path)[0]


def test_unknown_dtype_is_shown_without_a_size_check(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", {"w": ("Q99", [3], b"abcde")})
    assert summary(path)[1].startswith("w  Q99  [3]  sha256:")


# --- npy / npz ----------------------------------------------------------------------------


def test_npy_shows_dtype_shape_order_and_data_hash(tmp_path: Path) -> None:
    data = f32(1, 2, 3, 4, 5, 6)
    (tmp_path / "a.npy").write_bytes(npy_bytes("<f4", (2, 3), data))
    (tmp_path / "f.npy").write_bytes(npy_bytes("<f4", (3, 2), data, fortran=True, major=2))
    short = hashlib.sha256(data).hexdigest()[:16]
    assert summary(tmp_path / "a.npy") == [f"npy: <f4  [2, 3]  sha256:{short}"]
    assert summary(tmp_path / "f.npy") == [f"npy: <f4  [3, 2]  fortran-order  sha256:{short}"]


def test_npy_data_of_the_wrong_length_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "a.npy").write_bytes(npy_bytes("<f4", (4,), f32(1, 2)))
    assert summary(tmp_path / "a.npy")[0].endswith("(data is 8 bytes, the header promises 16)")


def test_npy_header_is_never_evaluated_as_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    body = f"{{'descr': __import__('pathlib').Path({str(marker)!r}).touch(), 'fortran_order': False, 'shape': ()}}"
    raw = body.encode() + b"\n"
    (tmp_path / "evil.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw)
    lines = summary(tmp_path / "evil.npy")
    assert not marker.exists()
    assert lines[0].startswith("(not a readable npy file: .npy header is not a dict literal")


def test_npy_written_by_numpy_matches(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    array = np.arange(12, dtype="<i8").reshape(3, 4)
    np.save(tmp_path / "a.npy", array)
    np.save(tmp_path / "s.npy", np.array(["ab", "c"]))
    assert summary(tmp_path / "a.npy") == [
        f"npy: <i8  [3, 4]  sha256:{hashlib.sha256(array.tobytes()).hexdigest()[:16]}"
    ]
    assert summary(tmp_path / "s.npy")[0].startswith("npy: <U2  [2]  sha256:")  # 16 bytes: no length warning


def test_npz_lists_members_sorted_and_streams_compressed_ones(tmp_path: Path) -> None:
    path = tmp_path / "z.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("w.npy", npy_bytes("<f4", (2,), f32(1, 2)))
        archive.writestr("b.npy", npy_bytes("<f4", (1,), f32(3)))
        archive.writestr("notes.txt", "hello")
        archive.writestr("broken.npy", b"not an array")
    lines = summary(path)
    assert lines[0] == "npz: 3 arrays, 1 other member"
    assert lines[1].startswith("b  <f4  [1]  sha256:")
    assert lines[2].startswith("broken.npy  (not an array: no .npy magic)  12 bytes  sha256:")
    assert lines[3] == f"notes.txt  (not an array)  5 bytes  sha256:{hashlib.sha256(b'hello').hexdigest()[:16]}"
    assert lines[4] == f"w  <f4  [2]  sha256:{hashlib.sha256(f32(1, 2)).hexdigest()[:16]}"


def test_npz_written_by_numpy_matches(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    np.savez_compressed(tmp_path / "z.npz", a=np.ones(3), b=np.eye(2, dtype=np.int32))
    lines = summary(tmp_path / "z.npz")
    assert lines[0] == "npz: 2 arrays"
    assert lines[2] == f"b  <i4  [2, 2]  sha256:{hashlib.sha256(np.eye(2, dtype=np.int32).tobytes()).hexdigest()[:16]}"


def test_corrupt_npz_falls_back(tmp_path: Path) -> None:
    (tmp_path / "z.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    lines = summary(tmp_path / "z.npz")
    assert lines[0].startswith("(not a readable npz file:")
    assert lines[1].startswith("binary data: 104 bytes")


# --- CSV / TSV ------------------------------------------------------------------------------


def test_csv_shows_columns_then_one_line_per_row_then_the_count(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes('\ufeffid,name\r\n1,"multi\nline"\r\n2,"a,b"\r\n3,"quoted"\r\n'.encode())
    assert summary(path) == ["csv columns: id,name", "1,multi\\nline", '2,"a,b"', "3,quoted", "(3 rows)"]


def test_tsv_keeps_tabs(tmp_path: Path) -> None:
    (tmp_path / "t.tsv").write_text("a\tb\n1\t2\n")
    assert summary(tmp_path / "t.tsv") == ["tsv columns: a\tb", "1\t2", "(1 row)"]


def test_csv_rows_added_and_removed_are_the_only_changed_lines(tmp_path: Path) -> None:
    rows = [f"{i},name {i}" for i in range(20)]
    (tmp_path / "a.csv").write_text("id,name\n" + "\n".join(rows) + "\n")
    new = [r for r in rows if r != "5,name 5"] + [f"{i},name {i}" for i in range(20, 30)]
    (tmp_path / "b.csv").write_text("id,name\n" + "\n".join(new) + "\n")
    removed, added = changed(summary(tmp_path / "a.csv"), summary(tmp_path / "b.csv"))
    assert removed == {"5,name 5", "(20 rows)"}
    assert added == {f"{i},name {i}" for i in range(20, 30)} | {"(29 rows)"}


def test_invalid_utf8_in_csv_is_shown_escaped_not_lost(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes(b"a\n\xff\xfe\n")
    assert summary(tmp_path / "t.csv")[1] == "\\xff\\xfe"


def test_csv_past_the_row_cap_is_summarised_in_content_defined_chunks(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(diffs.MAX_ROWS_ENV, "10")
    monkeypatch.setattr(tables, "CHUNK_ROWS", 8)
    rows = [f"{i},value {i * 7919 % 1000}" for i in range(400)]
    (tmp_path / "a.csv").write_text("id,v\n" + "\n".join(rows) + "\n")
    before = summary(tmp_path / "a.csv")
    assert before[1:11] == rows[:10]
    assert before[11].startswith("(rows after the first 10 are summarised")
    chunks = [line for line in before if line.startswith("(chunk:")]
    assert len(chunks) > 5
    assert sum(int(line.split()[1]) for line in chunks) == 390
    assert before[-1] == "(400 rows)"

    rows.insert(200, "new,row")
    (tmp_path / "b.csv").write_text("id,v\n" + "\n".join(rows) + "\n")
    removed, added = changed(before, summary(tmp_path / "b.csv"))
    # Only the chunk the row landed in (and the count) changed, not every chunk after it.
    assert len([line for line in removed if line.startswith("(chunk:")]) == 1
    assert len([line for line in added if line.startswith("(chunk:")]) in (1, 2)


def test_max_rows_reads_the_environment(monkeypatch) -> None:
    monkeypatch.delenv(diffs.MAX_ROWS_ENV, raising=False)
    assert diffs.max_rows() == diffs.DEFAULT_MAX_ROWS
    monkeypatch.setenv(diffs.MAX_ROWS_ENV, "25")
    assert diffs.max_rows() == 25
    monkeypatch.setenv(diffs.MAX_ROWS_ENV, "lots")
    assert diffs.max_rows() == diffs.DEFAULT_MAX_ROWS


def test_long_csv_rows_are_clipped_with_a_hash(tmp_path: Path) -> None:
    long = "x" * 5000
    (tmp_path / "t.csv").write_text(f"a\n{long}\n")
    line = summary(tmp_path / "t.csv")[1]
    assert line.startswith("x" * 2000 + "… [5000 chars, sha256:")


def test_csv_line_over_the_limit_falls_back(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tables, "MAX_LINE", 100)
    (tmp_path / "t.csv").write_text("a\n" + "y" * 500 + "\n")
    lines = summary(tmp_path / "t.csv")
    assert any("longer than 100 characters" in line for line in lines)
    assert lines[-1].startswith("binary data:")


# --- JSONL ----------------------------------------------------------------------------------


def test_jsonl_rows_are_canonical_json_with_a_header_of_keys(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"b": 1, "a": "é"}\n\n[1, 2]\nnot json\n{"c": {"z": 1, "y": 2}}\n')
    assert summary(path) == [
        'jsonl keys (first 1000 rows): ["a","b","c"]',
        '{"a":"é","b":1}',
        "[1,2]",
        "(not JSON) not json",
        '{"c":{"y":2,"z":1}}',
        "(4 rows)",
    ]


def test_jsonl_key_order_and_spacing_do_not_show_as_changes(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"a": 1, "b": 2}\n')
    (tmp_path / "b.jsonl").write_text('{"b":2,"a":1}\n')
    assert summary(tmp_path / "a.jsonl") == summary(tmp_path / "b.jsonl")


def test_jsonl_overlong_line_is_shown_as_its_length_and_hash(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tables, "MAX_LINE", 64)
    line = b'{"k": "' + b"v" * 200 + b'"}\n'
    (tmp_path / "t.jsonl").write_bytes(line + b'{"k": 1}\n')
    lines = summary(tmp_path / "t.jsonl")
    assert lines[1] == f"(a line of {len(line)} bytes, sha256:{hashlib.sha256(line).hexdigest()[:16]})"
    assert lines[2] == '{"k":1}'


# --- Parquet --------------------------------------------------------------------------------


def test_parquet_names_the_changed_column(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 50
    table = pa.table({"id": list(range(n)), "name": [f"n{i}" for i in range(n)], "score": [i / 2 for i in range(n)]})
    pq.write_table(table, tmp_path / "a.parquet", row_group_size=20)
    scores = pa.array([i / 2 + (1 if i == 30 else 0) for i in range(n)])
    pq.write_table(table.set_column(2, "score", scores), tmp_path / "b.parquet", row_group_size=20)
    before, after = summary(tmp_path / "a.parquet"), summary(tmp_path / "b.parquet")

    assert before[:4] == [
        "parquet: 3 columns, 3 row groups",
        "column id: int64",
        "column name: string",
        "column score: double",
    ]
    removed, added = changed(before, after)
    column_lines = {line for line in removed | added if " column " in line}
    assert column_lines and all(line.startswith("row group 1 column score:") for line in column_lines)
    assert {line for line in removed if line.startswith("{")} == {'{"id":30,"name":"n30","score":15.0}'}


def test_parquet_without_pyarrow_says_so_and_shows_size_and_hash(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 10 + b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    lines = summary(path)
    assert "pyarrow is not installed" in lines[0]
    assert lines[1].startswith("binary data: 18 bytes")


def test_corrupt_parquet_falls_back(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow.parquet")
    (tmp_path / "t.parquet").write_bytes(b"PAR1garbagePAR1")
    lines = summary(tmp_path / "t.parquet")
    assert lines[0].startswith("(not a readable parquet file:")
    assert lines[1].startswith("binary data: 15 bytes")


# --- recognition, pointers, fallback -----------------------------------------------------


def test_pointer_file_says_content_is_not_checked_out(tmp_path: Path) -> None:
    (tmp_path / "m.safetensors").write_text(f"version https://gitmlx.dev/spec/v1\noid sha256:{OID}\nsize 5\n")
    (tmp_path / "l.bin").write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{OID}\nsize 5\n")
    assert summary(tmp_path / "m.safetensors") == [
        f"gitmlx pointer: oid sha256:{OID}, size 5 (content not checked out)"
    ]
    assert summary(tmp_path / "l.bin") == [f"Git LFS pointer: oid sha256:{OID}, size 5 (content not checked out)"]


def test_pointer_is_summarised_as_its_local_object_when_the_resolver_finds_it(tmp_path: Path) -> None:
    obj = write_safetensors(tmp_path / "object", MODEL)  # store objects have no extension
    oid = hashlib.sha256(obj.read_bytes()).hexdigest()
    pointer = tmp_path / "m.safetensors"
    pointer.write_text(f"version https://gitmlx.dev/spec/v1\noid sha256:{oid}\nsize {obj.stat().st_size}\n")
    asked = []

    def resolve(p):
        asked.append(p.oid)
        return obj if p.oid == oid else None

    assert list(diffs.summarize(pointer, resolve)) == summary(obj)
    assert asked == [oid]
    assert list(diffs.summarize(pointer, lambda p: None))[0].startswith("gitmlx pointer: ")


def test_a_resolved_object_takes_its_format_from_the_tracked_name(tmp_path: Path) -> None:
    obj = tmp_path / "object"
    obj.write_text("a,b\n1,2\n")
    pointer = tmp_path / "t.csv"
    pointer.write_text(f"version https://gitmlx.dev/spec/v1\noid sha256:{OID}\nsize 8\n")
    assert list(diffs.summarize(pointer, lambda p: obj)) == ["csv columns: a,b", "1,2", "(1 row)"]


def test_content_is_recognised_before_the_extension(tmp_path: Path) -> None:
    path = write_safetensors(tmp_path / "weights.bin", MODEL)
    assert summary(path)[0].startswith("safetensors: 3 tensors")
    (tmp_path / "x.csv").write_bytes(npy_bytes("<f4", (1,), f32(1)))
    assert summary(tmp_path / "x.csv")[0].startswith("npy: <f4  [1]")


def test_unrecognised_binary_is_size_and_full_sha256(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    (tmp_path / "blob.bin").write_bytes(data)
    assert summary(tmp_path / "blob.bin") == [
        f"binary data: 1024 bytes (1.0 KiB), sha256:{hashlib.sha256(data).hexdigest()}"
    ]


def test_small_unrecognised_text_is_shown_as_is_and_large_text_is_not(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "config.yaml").write_text("lr: 0.1\r\nepochs: 3\n")
    assert summary(tmp_path / "config.yaml") == ["lr: 0.1", "epochs: 3"]
    monkeypatch.setattr(diffs, "TEXT_LIMIT", 4)
    assert summary(tmp_path / "config.yaml")[0].startswith("binary data:")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.safetensors").write_bytes(b"")
    assert summary(tmp_path / "e.safetensors") == ["empty file"]


def test_missing_file_raises_oserror_for_the_command_to_report(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        summary(tmp_path / "missing.bin")


@settings(max_examples=150, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.binary(max_size=200).map(lambda b: struct.pack("<Q", len(b)) + b),
        st.binary(max_size=200).map(lambda b: b"\x93NUMPY" + b),
        st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b),
        st.binary(max_size=200).map(lambda b: b"PAR1" + b + b"PAR1"),
        st.text(max_size=200).map(str.encode),
    ),
    ext=st.sampled_from([".safetensors", ".npy", ".npz", ".parquet", ".csv", ".tsv", ".jsonl", ".bin", ""]),
)
def test_any_content_gives_a_summary_and_never_raises(tmp_path_factory, data: bytes, ext: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"file{ext}"
    path.write_bytes(data)
    lines = summary(path)
    assert lines or data.strip() == b"" or ext in ("", ".bin")
    assert all("\n" not in line for line in lines)


# --- the command ----------------------------------------------------------------------------


def test_textconv_writes_the_summary_to_stdout_and_exits_0(tmp_path: Path, capsysbinary) -> None:
    path = write_safetensors(tmp_path / "m.safetensors", MODEL)
    assert cli.main(["textconv", str(path)]) == 0
    out = capsysbinary.readouterr().out.decode()
    assert out == "\n".join(summary(path)) + "\n"


def test_textconv_takes_the_last_argument_so_dash_names_work(tmp_path: Path, monkeypatch, capsysbinary) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-x.csv").write_text("a\n1\n")
    assert cli.main(["textconv", "-x.csv"]) == 0
    assert capsysbinary.readouterr().out == b"csv columns: a\n1\n(1 row)\n"


def test_textconv_without_a_file_is_a_usage_error(capsys) -> None:
    assert cli.main(["textconv"]) == 2
    assert "needs a FILE" in capsys.readouterr().err


def test_textconv_on_an_unreadable_file_fails_naming_it(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.bin"
    assert cli.main(["textconv", str(missing)]) == 1
    assert f"cannot read '{missing}'" in capsys.readouterr().err


def test_npy_header_helper_rejects_unknown_versions(tmp_path: Path) -> None:
    import io

    with pytest.raises(diffs.Malformed, match="unknown .npy format version 9"):
        numpy_files.read_header(io.BytesIO(b"\x93NUMPY\x09\x00\x00\x00"))
