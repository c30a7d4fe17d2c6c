"""Headers built to make `git log -p` slow: the textconv driver bounds every count before
arithmetic, and any bytes at all end in a summary or one Malformed, never another error."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitmlx.diffs import numpy_files
from gitmlx.diffs import safetensors as safetensors_diff
from gitmlx.diffs.summary import MAX_DIMS, Malformed


def safetensors_bytes(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def npy_with_header(text: str) -> bytes:
    raw = text.encode("latin-1")
    return b"\x93NUMPY\x02\x00" + struct.pack("<I", len(raw)) + raw  # version 2: a 4-byte length


def test_huge_dimensions_are_refused_before_any_multiplication() -> None:
    """800 dimensions of 4,000 digits took 26 s of CPU; in a child process with a deadline,
    so a regression fails instead of hanging."""
    code = (
        "import io, json, struct\n"
        "from gitmlx.diffs import safetensors\n"
        "from gitmlx.diffs.summary import Malformed\n"
        "dims = ','.join(['9' * 4000] * 800)\n"
        'raw = (\'{"t": {"dtype": "F32", "shape": [\' + dims + \'], "data_offsets": [0, 4]}}\').encode()\n'
        "blob = struct.pack('<Q', len(raw)) + raw + bytes(4)\n"
        "try:\n"
        "    safetensors.read_header(io.BytesIO(blob), len(blob))\n"
        "except Malformed:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('accepted')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=20)


@pytest.mark.parametrize(
    "shape",
    [[2**63], [-1], [True], [1] * (MAX_DIMS + 1), [2**32, 2**32, 4]],
)
def test_impossible_safetensors_shapes_are_malformed(shape: list) -> None:
    blob = safetensors_bytes({"t": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4]}}, bytes(4))
    with pytest.raises(Malformed):
        safetensors_diff.read_header(io.BytesIO(blob), len(blob))


@pytest.mark.parametrize(
    "text",
    [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (" + ",".join(["9" * 4000] * 200) + ",)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (" + ",".join(["1"] * (MAX_DIMS + 1)) + ",)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
    ],
)
def test_impossible_npy_shapes_are_malformed(text: str) -> None:
    with pytest.raises(Malformed):
        numpy_files.read_header(io.BytesIO(npy_with_header(text)))


def test_a_shape_whose_product_overflows_is_reported_not_computed() -> None:
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + ",".join([str(2**62)] * 60) + ",)}"
    header = numpy_files.read_header(io.BytesIO(npy_with_header(text)))
    assert header.expected_nbytes() is None


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(header=st.dictionaries(st.text(max_size=8), _json_values, max_size=5), data=st.binary(max_size=64))
def test_any_safetensors_header_is_summarised_or_malformed(header: dict, data: bytes) -> None:
    blob = safetensors_bytes(header, data)
    try:
        safetensors_diff.read_header(io.BytesIO(blob), len(blob))
    except Malformed:
        pass


@settings(max_examples=300, deadline=None)
@given(blob=st.binary(max_size=300))
def test_any_bytes_after_the_npy_magic_are_read_or_malformed(blob: bytes) -> None:
    try:
        numpy_files.read_header(io.BytesIO(b"\x93NUMPY" + blob))
    except Malformed:
        pass
