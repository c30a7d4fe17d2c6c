"""What the hostile-content fuzzing (tests/reliability/test_fuzz_bounds.py) found, each
kept as a plain regression test."""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import warnings
from pathlib import Path

import pytest

from gitmlx.config import Config
from gitmlx.diffs import numpy_files, safetensors
from gitmlx.diffs.summary import Malformed
from gitmlx.errors import ConfigError, MlxError, RemoteError
from gitmlx.format import layout
from gitmlx.remotes.local import LocalRemote
from gitmlx.transfer import gc_marks


def _one_short_line(exc: BaseException) -> None:
    assert "\n" not in str(exc) and len(str(exc)) < 200, str(exc)[:300]


def test_a_small_remote_file_read_with_a_large_limit_allocates_its_size(tmp_path: Path) -> None:
    """Every gc note was read with a 256 MiB limit, which read() allocated up front."""
    (tmp_path / "gc").mkdir()
    (tmp_path / "gc" / "note.json").write_bytes(b"{}")
    remote = LocalRemote(tmp_path)
    tracemalloc.start()
    try:
        assert remote.read_range("gc/note.json", 0, gc_marks.NOTE_LIMIT) == b"{}"
        assert remote.read_range("gc/note.json", 5, 10) == b""
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


@pytest.mark.parametrize("key", ["mlx.smudgelimit", "mlx.concurrency"])
def test_a_huge_setting_is_named_in_one_short_line(key: str) -> None:
    config = Config({}, [], [(key, "9" * 5000)])
    with pytest.raises(ConfigError) as caught:
        config.size(key) if key == "mlx.smudgelimit" else config.integer(key)
    _one_short_line(caught.value)
    assert "5002 characters" in str(caught.value)


def test_a_marker_with_a_huge_format_value_is_refused_in_one_short_line() -> None:
    with pytest.raises(RemoteError) as caught:
        layout.check_format(json.dumps({"format": "x" * 4000}).encode(), "file:///r")
    _one_short_line(caught.value)


def test_a_gc_note_with_a_huge_format_value_is_refused_in_one_short_line() -> None:
    with pytest.raises(RemoteError) as caught:
        gc_marks.decode_note("gc/n.json", "pending", 0, json.dumps({"format": [2] * 3000}).encode())
    _one_short_line(caught.value)


def test_a_safetensors_header_nested_too_deep_is_malformed() -> None:
    header = b"[" * 100_000 + b"]" * 100_000
    data = struct.pack("<Q", len(header)) + header
    with pytest.raises(Malformed, match="nested too deep"):
        safetensors.read_header(io.BytesIO(data), len(data))
    assert issubclass(Malformed, MlxError)  # one clear error type, whatever the parser


def test_an_npy_width_of_thousands_of_digits_promises_no_size() -> None:
    text = "{'descr': '<U" + "9" * 5000 + "', 'fortran_order': False, 'shape': (2,)}"
    raw = text.encode()
    data = numpy_files.NPY_MAGIC + bytes([1, 0]) + struct.pack("<H", len(raw)) + raw
    header = numpy_files.read_header(io.BytesIO(data))
    assert header.expected_nbytes() is None


@pytest.mark.parametrize(
    "entry",
    [
        {"t": {"dtype": "F32", "shape": [999999999999999999] * 64, "data_offsets": [0, 0]}},
        {"n" * 5000: {"dtype": "F32", "shape": [1], "data_offsets": [0, 9]}},
        {"n" * 5000: 1},
    ],
)
def test_a_safetensors_error_is_one_short_line_whatever_the_shape_or_name(entry: dict) -> None:
    header = json.dumps(entry).encode()
    data = struct.pack("<Q", len(header)) + header + bytes(16)
    with pytest.raises(Malformed) as caught:
        safetensors.read_header(io.BytesIO(data), len(data))
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 400, str(caught.value)[:500]


def test_an_npy_header_python_would_warn_about_reads_without_a_warning() -> None:
    raw = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': '\\d'}"
    data = numpy_files.NPY_MAGIC + bytes([1, 0]) + struct.pack("<H", len(raw)) + raw
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(Malformed, match="exactly descr"):
            numpy_files.read_header(io.BytesIO(data))
