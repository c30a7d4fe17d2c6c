"""Hostile-content fuzzing: what a committed config, a hostile commit or a hostile remote
can hand gitmlx's parsers. Each input is handled within 1 s and 64 MiB of new Python
allocations (tests/support/fuzzing.py), with a result or one clear gitmlx error, and no
other exception escapes: the path pattern matcher, size and number settings, safetensors
and .npy headers (the diff driver), manifests, the remote format marker and gc notes.

The default run tries a modest number of inputs of each kind; `-m slow` many more. The
count per kind is printed at the end of the module (`-s` shows it).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitmlx.config import MAX_NUMBER, Config, parse_count, parse_days, parse_size
from gitmlx.diffs import numpy_files, safetensors
from gitmlx.errors import ConfigError, IntegrityError, RemoteError
from gitmlx.format import layout, manifest, patterns
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.local import LocalRemote
from gitmlx.transfer import common, gc_marks
from tests.support.fuzzing import TRIED, bounded

DEFAULT_EXAMPLES = 60
SLOW_EXAMPLES = 2000
_CHECKS = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print("\nfuzzed inputs: " + ", ".join(f"{kind} {n}" for kind, n in sorted(TRIED.items())))


def fuzz(**strategies: st.SearchStrategy) -> Callable[[Callable[..., None]], tuple[Callable, Callable]]:
    """A check as two tests: a modest default run and a long one behind `-m slow`."""

    def wrap(check: Callable[..., None]) -> tuple[Callable, Callable]:
        default = settings(max_examples=DEFAULT_EXAMPLES, deadline=None, suppress_health_check=_CHECKS)
        slow = settings(max_examples=SLOW_EXAMPLES, deadline=None, suppress_health_check=_CHECKS)
        return default(given(**strategies)(check)), pytest.mark.slow(slow(given(**strategies)(check)))

    return wrap


def repeat(piece: str, most: int) -> st.SearchStrategy[str]:
    return st.integers(1, most).map(lambda n: piece * n)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=30,
)
DEEP = st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n) | st.integers(1, 50_000).map(lambda n: '{"a":' * n)
HUGE_NUMBERS = st.integers(1, 20_000).map(lambda n: "9" * n)

# --- path patterns ------------------------------------------------------------------------

PATTERN = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="*?[]!^-\\/:a ", max_size=300),
    st.lists(
        st.sampled_from(["**", "*", "a", "/", "?", "[a-z]", "[[:alpha:]]", "[!/]", "\\", "[", "**/"]), max_size=300
    ).map("".join),
    st.integers(1, 200).map(lambda n: "**a" * n + "**b"),
    st.integers(1, 2000).map(lambda n: "*a" + "?" * n),
    st.integers(1, 500).map(lambda n: "[a]*" * n + "b"),
)
PATH = st.one_of(
    st.text(max_size=200),
    st.text(alphabet="ab/", min_size=1000, max_size=4096),
    st.integers(1, 4096).map(lambda n: "a" * n),
    st.binary(max_size=300).map(lambda b: b.decode("utf-8", "surrogateescape")),
)


@fuzz(pattern=PATTERN, path=PATH)
def _patterns(pattern: str, path: str) -> None:
    assert bounded("pattern", patterns.matches, path, pattern, errors=()) in (True, False)
    assert bounded("pattern", patterns.selected, path, [pattern], [pattern + "x"], errors=()) in (True, False)


test_any_pattern_and_path_match_in_bounded_time, test_many_patterns_and_paths_match_in_bounded_time = _patterns

# --- size and number settings -------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.text(max_size=50),
    st.text(alphabet="0123456789.kmgtibKMGTIB -+_e", max_size=40),
    HUGE_NUMBERS,
    HUGE_NUMBERS.map(lambda d: d + "GiB"),
    HUGE_NUMBERS.map(lambda d: "0." + d),
    st.sampled_from(["nan", "inf", "-1", "1e308", "\u0663", "\uff11", "0x10", "1_000", "9" * 19 + "t"]),
)


def _setting(key: str, text: str) -> int:
    config = Config({}, [], [(key, text)])
    return config.size(key) if key == "mlx.smudgelimit" else config.integer(key)


@fuzz(text=NUMBER_TEXT)
def _numbers(text: str) -> None:
    for parse in (parse_size, parse_count, parse_days):
        value = bounded("size", parse, text, errors=())
        assert value is None or 0 <= value <= MAX_NUMBER
    for key in ("mlx.smudgelimit", "mlx.concurrency"):
        value = bounded("size", _setting, key, text, errors=(ConfigError,))
        assert isinstance(value, ConfigError) or 0 < value <= MAX_NUMBER or key == "mlx.smudgelimit"


test_any_size_text_parses_in_bounded_time, test_many_size_texts_parse_in_bounded_time = _numbers

# --- safetensors and .npy headers -----------------------------------------------------------

TENSOR = st.fixed_dictionaries(
    {
        "dtype": st.sampled_from(["F32", "BF16", "X", 1, None]),
        "shape": st.lists(st.integers(-5, 2**70), max_size=70),
        "data_offsets": st.lists(st.integers(-5, 2**70), max_size=3),
    }
)
SAFETENSORS_JSON = st.one_of(
    st.dictionaries(st.text(max_size=10) | repeat("n", 5000), TENSOR | JSON, max_size=8).map(json.dumps),
    st.text(max_size=300),
    DEEP,
    st.tuples(st.integers(1, 800), st.integers(1, 5000)).map(
        lambda t: '{"t":{"dtype":"F32","shape":[' + ",".join(["9" * t[1]] * t[0]) + '],"data_offsets":[0,0]}}'
    ),
    st.integers(1, 50_000).map(lambda n: '{"__metadata__":{"k":' + "[" * n + "]" * n + "}}"),
)


@st.composite
def safetensors_files(draw: st.DrawFn) -> bytes:
    header = draw(SAFETENSORS_JSON).encode("utf-8", "surrogatepass")
    length = draw(st.sampled_from([len(header)] * 4 + [0, 2**64 - 1])) if draw(st.booleans()) else len(header)
    return struct.pack("<Q", length) + header + draw(st.binary(max_size=256))


def _safetensors(data: bytes) -> object:
    header = safetensors.read_header(io.BytesIO(data), len(data))
    return [(t.name, t.dtype, t.shape) for t in header.tensors]


@fuzz(data=safetensors_files())
def _safetensors_headers(data: bytes) -> None:
    bounded("safetensors", _safetensors, data)


test_any_safetensors_header_is_read_or_refused, test_many_safetensors_headers_are_read_or_refused = _safetensors_headers

NPY_PARTS = {
    "descr": st.sampled_from(["'<f4'", "'|b1'", "[('a', '<f4')]", "b''", "None"])
    | HUGE_NUMBERS.map(lambda d: f"'<U{d}'")
    | HUGE_NUMBERS.map(lambda d: f"'<f{d}'")
    | st.text(max_size=3).map(lambda t: f"'<i{t}'"),
    "fortran_order": st.sampled_from(["False", "True", "0", "1", "None"]),
    "shape": st.lists(st.integers(-5, 2**70).map(str) | HUGE_NUMBERS, max_size=80).map(lambda ds: f"({','.join(ds)},)"),
}


@st.composite
def npy_files(draw: st.DrawFn) -> bytes:
    parts = {key: draw(strategy) for key, strategy in NPY_PARTS.items()}
    text = draw(
        st.one_of(
            st.just("{" + ", ".join(f"'{k}': {v}" for k, v in parts.items()) + "}"),
            st.text(max_size=300),
            DEEP,
            st.integers(1, 100_000).map(lambda n: "(" * n),
        )
    )
    raw = text.encode("utf-8", "surrogatepass")
    major = draw(st.sampled_from([1, 2, 3, 4]))
    length = struct.pack("<H", min(len(raw), 0xFFFF)) if major == 1 else struct.pack("<I", len(raw))
    return numpy_files.NPY_MAGIC + bytes([major, 0]) + length + raw + draw(st.binary(max_size=64))


def _npy(data: bytes) -> object:
    header = numpy_files.read_header(io.BytesIO(data))
    return header.describe()[:100], header.expected_nbytes()


@fuzz(data=npy_files())
def _npy_headers(data: bytes) -> None:
    bounded("npy", _npy, data)


test_any_npy_header_is_read_or_refused, test_many_npy_headers_are_read_or_refused = _npy_headers

# --- manifests ------------------------------------------------------------------------------

HEX64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
U32 = st.integers(0, 2**32 - 1)


@st.composite
def manifests(draw: st.DrawFn) -> tuple[bytes, Pointer]:
    """A manifest with a valid checksum (a hostile remote computes it) and hostile fields."""
    oid = draw(HEX64)
    records = []
    for _ in range(draw(st.integers(0, 20))):
        raw = draw(st.integers(0, 5 << 20) | U32)
        stored = draw(st.sampled_from([raw]) | U32)
        records.append(
            (
                draw(st.binary(min_size=32, max_size=32)),
                draw(st.integers(0, 5) | U32),
                draw(st.integers(0, 2**64 - 1)),
                stored,
                raw,
                draw(st.integers(0, 255)),
            )
        )
    size = draw(st.sampled_from([sum(r[4] for r in records)]) | st.integers(0, 2**64 - 1))
    packs = draw(st.integers(0, 5))
    pack_count = draw(st.sampled_from([packs]) | U32)
    chunk_count = draw(st.sampled_from([len(records)]) | U32)
    claimed = bytes.fromhex(draw(st.sampled_from([oid]) | HEX64))
    magic = draw(st.sampled_from([manifest.MAGIC, b"MLXMAN02", bytes(8)]))
    body = struct.pack("<8s32sQII", magic, claimed, size, pack_count, chunk_count)
    body += b"".join(draw(st.binary(min_size=32, max_size=32)) for _ in range(packs))
    body += b"".join(struct.pack("<32sIQIIB", *r) for r in records) + draw(st.binary(max_size=8))
    trailer = hashlib.sha256(body).digest() if draw(st.integers(0, 9)) else bytes(32)
    return body + trailer, Pointer(oid, min(size, 2**63 - 1))


def _manifest(data: bytes, expected: Pointer) -> object:
    found = manifest.decode(data, expected)
    return [(c.pack, c.offset, c.stored, c.raw, c.codec) for c in found.chunks]


@fuzz(case=manifests())
def _manifests(case: tuple[bytes, Pointer]) -> None:
    bounded("manifest", _manifest, *case, errors=(IntegrityError,))


test_any_manifest_is_decoded_or_refused, test_many_manifests_are_decoded_or_refused = _manifests

# --- the remote format marker and gc notes ------------------------------------------------

DOCUMENTS = st.one_of(
    st.binary(max_size=300),
    JSON.map(json.dumps),
    st.fixed_dictionaries({"format": JSON}).map(json.dumps),
    st.fixed_dictionaries({"format": JSON, "manifests": JSON, "packs": JSON}).map(json.dumps),
    st.fixed_dictionaries({"format": st.just(1), "manifests": st.lists(HEX64 | st.text(max_size=70), max_size=20)}).map(
        json.dumps
    ),
    DEEP,
    st.integers(1, 4000).map(lambda n: json.dumps({"format": "x" * n})),
    st.integers(1, 3000).map(lambda n: json.dumps({"format": [1] * n})),
)


def _bytes(doc: str | bytes) -> bytes:
    return doc if isinstance(doc, bytes) else doc.encode("utf-8", "surrogatepass")


@fuzz(doc=DOCUMENTS)
def _markers(doc: str | bytes) -> None:
    bounded("marker", layout.check_format, _bytes(doc)[:4096], "file:///remote", errors=(RemoteError,))


test_any_format_marker_is_accepted_or_refused, test_many_format_markers_are_accepted_or_refused = _markers


def _remote_with_note(root: Path, data: bytes) -> LocalRemote:
    remote = LocalRemote(root)
    key = layout.gc_key("pending", 1_700_000_000, "00000000000000aa")
    (root / key).parent.mkdir(parents=True, exist_ok=True)
    (root / key).write_bytes(data)
    return remote


@fuzz(doc=DOCUMENTS, key=st.text(max_size=80))
def _notes(sealed, doc: str | bytes, key: str) -> None:
    remote = _remote_with_note(sealed.tmp / "remote", _bytes(doc))
    marks = bounded("gc note", gc_marks.read_marks, remote, errors=(RemoteError,))
    assert isinstance(marks, (gc_marks.Marks, RemoteError))
    assert bounded("gc note", layout.gc_note_from_key, f"gc/{key}", errors=()) is None or key.startswith("pending-")


test_any_gc_note_is_read_or_ignored, test_many_gc_notes_are_read_or_ignored = _notes


@pytest.mark.parametrize("damage", ["folder", "loop", "dangling", "huge"])
def test_a_damaged_marker_in_place_is_one_remote_error(sealed, damage: str) -> None:
    root = sealed.tmp / "remote"
    root.mkdir()
    marker = root / layout.FORMAT_KEY
    if damage == "folder":
        marker.mkdir()
    elif damage == "loop":
        os.symlink(marker, marker)
    elif damage == "dangling":
        os.symlink(root / "nowhere", marker)
    else:
        marker.write_bytes(b'{"format": ' + b"1" * (8 << 20) + b"}")
    remote = LocalRemote(root)
    outcome = bounded("marker", common.check_format, remote, False, errors=(RemoteError,))
    assert isinstance(outcome, RemoteError) or outcome is None, outcome  # None: no marker
    common._READABLE.discard(remote.identity)
    readable = bounded("marker", common.check_readable, remote, errors=(RemoteError,))
    assert isinstance(readable, RemoteError) or readable is None
