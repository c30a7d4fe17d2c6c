"""Codec 2 (byte-grouped zstd, docs/storage-format.md "Byte-grouped chunks"): round trips
of any length, phase and width, never more than the raw bytes, and a decoder that refuses
every malformed stored form with IntegrityError without allocating what it claims."""

from __future__ import annotations

import os
import struct
import sys
import tracemalloc
from types import SimpleNamespace

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from gitmlx.errors import IntegrityError
from gitmlx.format import codec
from gitmlx.format.manifest import CODEC_GROUPED, CODEC_RAW, CODEC_ZSTD
from tests.support.content import float_bytes

KIB = 1024
FP32 = float_bytes(16 * KIB, "fp32")  # 64 KiB of fp32 weights
TEXT = b"lorem ipsum dolor sit amet " * 3000


@settings(max_examples=150, deadline=None)
@given(
    width=st.sampled_from(codec.WIDTHS),
    phase=st.integers(0, 7),
    length=st.integers(1, 20 * KIB),
    kind=st.sampled_from(["e", "f", "d", "bf16", "noise"]),
)
def test_any_length_phase_and_width_round_trips(width: int, phase: int, length: int, kind: str) -> None:
    """Content-defined cuts fall anywhere: the chunk may start inside an element and end
    with a partial one."""
    source = os.urandom(length + 8) if kind == "noise" else float_bytes((length + 8) // 2, length, kind)
    chunk = source[phase : phase + length]
    stored = codec.group(chunk, width)
    if len(chunk) < width:
        assert stored is None
        return
    assert stored is not None
    assert bytes(codec.decode(CODEC_GROUPED, stored, len(chunk))) == chunk
    kind_out, kept = codec.encode(chunk, width)
    assert len(kept) <= len(chunk)
    assert bytes(codec.decode(kind_out, kept, len(chunk))) == chunk


@settings(max_examples=60, deadline=None)
@given(data=st.binary(min_size=1, max_size=3000), width=st.sampled_from((0, *codec.WIDTHS)))
def test_encode_never_stores_more_than_the_raw_bytes(data: bytes, width: int) -> None:
    kind, stored = codec.encode(data, width)
    assert len(stored) <= len(data)
    assert kind == CODEC_RAW or len(stored) <= len(data) - len(data) // 16
    assert bytes(codec.decode(kind, stored, len(data))) == data


@pytest.mark.parametrize(("kind", "width"), [("e", 2), ("bf16", 2), ("f", 4), ("d", 8)])
def test_the_probe_finds_the_element_width_and_grouping_beats_zstd(kind: str, width: int) -> None:
    chunk = float_bytes(64 * KIB // struct.calcsize(kind if kind != "bf16" else "e"), kind, kind)[1:]
    assert codec.choose_width(chunk) == width
    grouped, plain = codec.encode(chunk, width), codec.encode(chunk, 0)
    assert grouped[0] == CODEC_GROUPED
    assert len(grouped[1]) < len(plain[1])


def test_text_stays_plain_zstd_and_noise_raw_even_when_grouping_is_allowed() -> None:
    sampler = codec.Sampler(grouped=True)
    assert sampler.encode(TEXT)[0] == CODEC_ZSTD
    noise = os.urandom(64 * KIB)
    assert codec.Sampler(grouped=True).encode(noise) == (CODEC_RAW, noise)


def test_the_probe_gives_up_on_random_bytes_after_one_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    """Incompressible chunks (random test data, compressed files) cost the probe one
    compression of its sample, not four."""
    real = codec._compressor()
    calls: list[int] = []

    class Counting:
        def compress(self, data: bytes) -> bytes:
            calls.append(len(data))
            return real.compressor.compress(data)

    monkeypatch.setattr(codec, "_compressor", lambda: SimpleNamespace(compressor=Counting()))
    assert codec.choose_width(os.urandom(64 * KIB)) == 0
    assert calls == [codec.PROBE_BYTES]
    calls.clear()
    assert codec.choose_width(FP32) == 4
    assert len(calls) == 1 + sum(codec.WIDTHS)


def test_without_grouping_no_chunk_is_byte_grouped() -> None:
    """Format 1 remotes: their readers refuse codec 2."""
    sampler = codec.Sampler()
    assert {sampler.encode(FP32[i:])[0] for i in range(5)} <= {CODEC_RAW, CODEC_ZSTD}


def test_the_first_chunks_are_probed_again_after_a_header() -> None:
    sampler = codec.Sampler(grouped=True)
    kinds = [sampler.encode(chunk)[0] for chunk in (TEXT, FP32, FP32[3:])]
    assert kinds == [CODEC_ZSTD, CODEC_GROUPED, CODEC_GROUPED]


def _stored() -> tuple[bytes, int]:
    chunk = FP32[1:] + b"xyz"
    kind, stored = codec.encode(chunk, 4)
    assert kind == CODEC_GROUPED
    return bytes(stored), len(chunk)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_stored_bytes_fail_with_integrity_error_only(data: st.DataObject) -> None:
    stored, raw = _stored()
    damaged = bytearray(stored)
    how = data.draw(st.sampled_from(["flip", "cut", "extend", "header"]))
    if how == "flip":
        damaged[data.draw(st.integers(0, len(stored) - 1))] ^= data.draw(st.integers(1, 255))
    elif how == "cut":
        del damaged[data.draw(st.integers(0, len(stored) - 1)) :]
    elif how == "extend":
        damaged += data.draw(st.binary(min_size=1, max_size=8))
    else:
        damaged[: 1 + 16] = data.draw(st.binary(min_size=17, max_size=17))
    length = data.draw(st.sampled_from([raw, raw - 1, raw + 1, 1, 3]))
    _decodes_or_refuses(bytes(damaged), length)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_stored_bytes_fail_with_integrity_error_only(data: st.DataObject) -> None:
    """Random planes under a header whose lengths add up (half the time), so the decoder
    gets past its header checks to the planes: random bytes, or a zstd frame's magic."""
    width = data.draw(st.sampled_from([*codec.WIDTHS, 0, 3]))
    raw = data.draw(st.integers(1, 3000))
    planes = [
        data.draw(st.sampled_from([b"", b"\x28\xb5\x2f\xfd"])) + data.draw(st.binary(max_size=raw // 2))
        for _ in range(max(width, 1))
    ]
    tail = data.draw(st.binary(max_size=7))
    lengths = (
        [len(p) for p in planes]
        if data.draw(st.booleans())
        else data.draw(st.lists(st.integers(0, 2000), min_size=len(planes), max_size=len(planes)))
    )
    header = bytes([width]) + struct.pack(f"<{len(lengths)}I", *lengths)
    _decodes_or_refuses(header + tail + b"".join(planes), raw)


def _decodes_or_refuses(stored: bytes, raw: int) -> None:
    """IntegrityError, or exactly `raw` bytes (a flipped byte of a verbatim plane decodes:
    the chunk hash catches it); never more memory than a few times what is at stake."""
    tracemalloc.start()
    try:
        out = codec.decode(CODEC_GROUPED, stored, raw)
        assert len(out) == raw
    except IntegrityError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 4 * max(raw, len(stored)) + 64 * KIB


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        (b"", "width 0"),
        (b"\x03" + bytes(20), "width 3"),
        (b"\x04" + struct.pack("<4I", 0, 1, 1, 1), "a plane of 0 bytes"),
        (b"\x02" + struct.pack("<2I", 5, 5) + b"\x28\xb5\x2f\xfd\x00" * 2, "not frames of 6 bytes"),
    ],
)
def test_malformed_headers_are_refused(stored: bytes, why: str) -> None:
    with pytest.raises(IntegrityError):
        codec.decode(CODEC_GROUPED, stored, 12)


def _huge_plane_chunk(count: int) -> bytes:
    """A width-2 stored form whose first plane is a frame declaring 64 MiB of content."""
    frame = zstandard.ZstdCompressor(level=1).compress(bytes(64 * 1024 * 1024))
    planes = [frame, bytes(count)]
    return bytes([2]) + struct.pack("<2I", len(frame), count) + b"".join(planes)


def test_a_frame_declaring_a_huge_size_is_refused_before_it_is_allocated() -> None:
    count = 100_000  # the frame (a few KiB) is shorter than its plane, so it is taken as one
    stored = _huge_plane_chunk(count)
    frame_codec1 = zstandard.ZstdCompressor(level=1).compress(bytes(64 * 1024 * 1024))
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityError):
            codec.decode(CODEC_GROUPED, stored, 2 * count)
        with pytest.raises(IntegrityError):
            codec.decode(CODEC_ZSTD, frame_codec1, 200_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024


def test_a_plane_frame_followed_by_other_bytes_is_refused() -> None:
    plane = bytes(1000)
    frame = zstandard.ZstdCompressor(level=1).compress(plane)
    stored = bytes([2]) + struct.pack("<2I", len(frame) + 2, 1000) + frame + b"\x00\x00" + plane
    assert len(frame) + 2 < 1000
    with pytest.raises(IntegrityError):
        codec.decode(CODEC_GROUPED, stored, 2000)
    good = bytes([2]) + struct.pack("<2I", len(frame), 1000) + frame + plane
    assert codec.decode(CODEC_GROUPED, good, 2000) == bytes(2000)


def test_decode_with_and_without_numpy_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy is used only when the process imported it already: both paths, same bytes."""
    import numpy

    stored, raw = _stored()
    with_numpy = bytes(codec.decode(CODEC_GROUPED, stored, raw))
    monkeypatch.delitem(sys.modules, "numpy")
    without = bytes(codec.decode(CODEC_GROUPED, stored, raw))
    assert "numpy" not in sys.modules and numpy
    assert with_numpy == without == FP32[1:] + b"xyz"
