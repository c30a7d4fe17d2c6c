"""gitmlx.api.lazy and gitmlx.api.reader: which chunks a byte range needs, how they are fetched
(coalesced, cached, read ahead), and that no byte failing verification is ever returned.

Against an in-memory remote: no subprocess, no socket.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gitmlx.api.lazy import READAHEAD_START, ChunkCache, RemoteSource, Run, chunk_starts, covering, plan
from gitmlx.api.reader import ArtifactFile, FileSource
from gitmlx.errors import IntegrityError
from gitmlx.format import codec, layout
from gitmlx.format.manifest import CODEC_RAW, ChunkRef, Manifest
from gitmlx.format.pointer import Pointer

PACK_A = "a" * 64
PACK_B = "b" * 64


def _ref(raw: int, pack: str = PACK_A, offset: int = 0, stored: int | None = None) -> ChunkRef:
    return ChunkRef(bytes(32), pack, offset, raw if stored is None else stored, raw, CODEC_RAW)


def _back_to_back(sizes: list[int], pack: str = PACK_A) -> list[ChunkRef]:
    out, offset = [], 0
    for size in sizes:
        out.append(_ref(size, pack, offset))
        offset += size
    return out


# --- covering: which chunks hold a byte range --------------------------------------------


def test_covering_picks_exactly_the_chunks_a_range_touches() -> None:
    starts = chunk_starts(_back_to_back([100, 200, 300]))
    assert starts == [0, 100, 300, 600]
    assert covering(starts, 0, 1) == range(0, 1)
    assert covering(starts, 99, 1) == range(0, 1)
    assert covering(starts, 99, 2) == range(0, 2)  # straddles the first boundary
    assert covering(starts, 100, 200) == range(1, 2)  # exactly chunk 1
    assert covering(starts, 100, 201) == range(1, 3)
    assert covering(starts, 599, 10) == range(2, 3)  # clipped at the end
    assert covering(starts, 0, 10**9) == range(0, 3)


def test_covering_an_empty_range_or_past_the_end_needs_nothing() -> None:
    starts = chunk_starts(_back_to_back([100, 200]))
    assert covering(starts, 50, 0) == range(0)
    assert covering(starts, 300, 5) == range(0)
    assert covering(starts, 10**6, 5) == range(0)
    assert covering(chunk_starts([]), 0, 5) == range(0)


@given(st.lists(st.integers(1, 50), min_size=1, max_size=20), st.data())
def test_covering_matches_a_byte_by_byte_scan(sizes: list[int], data: st.DataObject) -> None:
    starts = chunk_starts(_back_to_back(sizes))
    size = starts[-1]
    offset = data.draw(st.integers(0, size + 5))
    length = data.draw(st.integers(0, size + 5))
    owners = {i for i in range(len(sizes)) for b in range(starts[i], starts[i + 1]) if offset <= b < offset + length}
    assert set(covering(starts, offset, length)) == owners


# --- plan: coalesced ranged reads --------------------------------------------------------


def test_plan_coalesces_neighbours_back_to_back_in_one_pack() -> None:
    chunks = _back_to_back([10, 20, 30, 40])
    assert plan(chunks, [0, 1, 2, 3]) == [Run(PACK_A, 0, 100, 0, 4)]
    assert plan(chunks, [1, 2]) == [Run(PACK_A, 10, 50, 1, 3)]


def test_plan_splits_at_a_gap_in_the_object_a_pack_change_or_a_gap_in_the_pack() -> None:
    chunks = _back_to_back([10, 20, 30, 40])
    assert plan(chunks, [0, 2, 3]) == [Run(PACK_A, 0, 10, 0, 1), Run(PACK_A, 30, 70, 2, 4)]
    mixed = [_ref(10, PACK_A, 0), _ref(10, PACK_B, 0), _ref(10, PACK_B, 10)]
    assert plan(mixed, [0, 1, 2]) == [Run(PACK_A, 0, 10, 0, 1), Run(PACK_B, 0, 20, 1, 3)]
    # Deduplicated chunks: in object order, but not back to back in their pack.
    scattered = [_ref(10, PACK_A, 50), _ref(10, PACK_A, 0), _ref(10, PACK_A, 10)]
    assert plan(scattered, [0, 1, 2]) == [Run(PACK_A, 50, 10, 0, 1), Run(PACK_A, 0, 20, 1, 3)]


def test_plan_caps_a_run_at_the_limit_in_stored_bytes() -> None:
    chunks = _back_to_back([10] * 10)
    runs = plan(chunks, list(range(10)), limit=30)
    assert [(r.first, r.stop, r.length) for r in runs] == [(0, 3, 30), (3, 6, 30), (6, 9, 30), (9, 10, 10)]
    assert plan(chunks, []) == []


# --- an object on an in-memory remote ----------------------------------------------------


class MemoryRemote:
    """A Remote over a dict; records every ranged read and the bytes it sent."""

    display_url = "mem://test"

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = dict(blobs)
        self.reads: list[tuple[str, int, int]] = []
        self.sent = 0

    def get(self, key, sink, offset=0, progress=None, length=None) -> None:
        data = self.blobs[key]
        end = len(data) if length is None else min(len(data), offset + length)
        self.reads.append((key, offset, end - offset))
        for i in range(offset, end, 7000):  # odd-sized pieces, as a network delivers them
            piece = data[i : min(i + 7000, end)]
            sink.write(piece)
            self.sent += len(piece)


def _build(data: bytes, sizes: list[int], compress: bool = True) -> tuple[Manifest, MemoryRemote]:
    """Chunks of `sizes`: the first half in one pack, the rest in another; compressible
    chunks stored with zstd when `compress`."""
    assert sum(sizes) == len(data)
    packs: list[bytearray] = [bytearray(), bytearray()]
    placed = []
    pos = 0
    for i, size in enumerate(sizes):
        raw = data[pos : pos + size]
        pos += size
        which = 0 if i < len(sizes) // 2 else 1
        kind, stored = codec.encode(raw) if compress else (CODEC_RAW, raw)
        placed.append((hashlib.sha256(raw).digest(), which, len(packs[which]), len(stored), size, kind))
        packs[which] += stored
    ids = [hashlib.sha256(bytes(p)).hexdigest() for p in packs]
    chunks = tuple(ChunkRef(h, ids[w], off, stored, raw, kind) for h, w, off, stored, raw, kind in placed)
    manifest = Manifest(hashlib.sha256(data).hexdigest(), len(data), chunks)
    remote = MemoryRemote({layout.pack_key(ids[i]): bytes(packs[i]) for i in range(2)})
    return manifest, remote


def _data(size: int, seed: int = 1) -> bytes:
    """Half random, half repetitive (so some chunks compress)."""
    rng = random.Random(seed)
    half = size // 2
    return rng.randbytes(half) + (b"0123456789abcdef" * (size // 16 + 1))[: size - half]


SIZES = [1000 + 37 * i for i in range(40)]


@pytest.fixture
def obj() -> tuple[bytes, Manifest, MemoryRemote]:
    data = _data(sum(SIZES))
    manifest, remote = _build(data, SIZES)
    assert any(c.codec != CODEC_RAW for c in manifest.chunks), "the test wants some compressed chunks"
    return data, manifest, remote


def _file(manifest: Manifest, remote: MemoryRemote, **kwargs) -> ArtifactFile:
    source = RemoteSource(remote, manifest, "'x.bin' at 'v1'", **kwargs)
    return ArtifactFile(source, "x.bin", "v1", manifest.pointer, "remote")


def test_a_range_fetches_only_its_chunks_in_one_read(obj) -> None:
    data, manifest, remote = obj
    starts = chunk_starts(manifest.chunks)
    offset, length = starts[3] + 5, starts[6] - starts[3]  # inside chunks 3..6
    with _file(manifest, remote) as f:
        f.seek(offset)
        assert f.read(length) == data[offset : offset + length]
    assert len(remote.reads) == 1
    assert remote.sent == sum(c.stored for c in manifest.chunks[3:7])


def test_any_range_reads_the_right_bytes(obj) -> None:
    data, manifest, remote = obj
    rng = random.Random(5)
    with _file(manifest, remote, cache_bytes=8000, readahead=0) as f:
        for _ in range(200):
            offset = rng.randrange(len(data) + 10)
            length = rng.randrange(5000)
            f.seek(offset)
            assert f.read(length) == data[offset : offset + length], (offset, length)


def test_cached_chunks_are_not_fetched_again(obj) -> None:
    data, manifest, remote = obj
    with _file(manifest, remote, readahead=0) as f:
        f.seek(2000)
        f.read(3000)
        reads = len(remote.reads)
        f.seek(2100)
        assert f.read(100) == data[2100:2200]
        assert len(remote.reads) == reads


def test_cache_drops_least_recently_used_past_its_limit() -> None:
    cache = ChunkCache(limit=250)
    for key in (b"a", b"b", b"c"):
        cache.put(key, bytes(100))
    assert b"a" not in cache and b"b" in cache and b"c" in cache
    assert cache.size == 200
    cache.get(b"b")
    cache.put(b"d", bytes(100))
    assert b"c" not in cache and b"b" in cache
    big = ChunkCache(limit=10)
    big.put(b"x", bytes(100))  # one chunk bigger than the limit is still kept until the next
    assert b"x" in big


def test_sequential_reads_read_ahead_and_random_reads_do_not(obj) -> None:
    data, manifest, remote = obj
    with _file(manifest, remote) as f:
        f.seek(20000)
        f.read(10)
        random_read = remote.sent
        assert random_read <= 2 * max(c.stored for c in manifest.chunks)
        chunks_before = len(remote.reads)
        for _ in range(30):  # a reader taking small sequential steps
            f.read(100)
        # One fetch: a ranged read in each of the two packs the read-ahead window spans.
        assert len(remote.reads) - chunks_before <= 2, "small sequential steps should share a read-ahead"
        assert len(data) < READAHEAD_START  # so the window took in the whole rest
        reads, pos = len(remote.reads), f.tell()
        assert f.read() == data[pos:]
        assert len(remote.reads) == reads


def test_a_whole_read_is_one_ranged_read_per_pack_and_verifies_the_object(obj) -> None:
    data, manifest, remote = obj
    with _file(manifest, remote) as f:
        assert f.read() == data
        assert f.verified
        assert f.wire_bytes == sum(c.stored for c in manifest.chunks)
    assert len(remote.reads) == 2  # two packs, each back to back


def test_a_damaged_chunk_raises_and_returns_none_of_its_bytes(obj) -> None:
    data, manifest, remote = obj
    key = layout.pack_key(manifest.chunks[0].pack)
    target = manifest.chunks[2]
    pack = bytearray(remote.blobs[key])
    pack[target.offset + target.stored // 2] ^= 0x01
    remote.blobs[key] = bytes(pack)
    starts = chunk_starts(manifest.chunks)
    with _file(manifest, remote) as f:
        f.seek(starts[2])
        with pytest.raises(IntegrityError) as caught:
            f.read(10)
        assert "chunk 2" in caught.value.message and "'x.bin' at 'v1'" in caught.value.message
        assert "mem://test" in caught.value.message
        f.seek(starts[10])  # an undamaged part still reads
        assert f.read(100) == data[starts[10] : starts[10] + 100]
        f.seek(0)
        with pytest.raises(IntegrityError):
            f.read()


def test_a_truncated_pack_raises(obj) -> None:
    _data_, manifest, remote = obj
    key = layout.pack_key(manifest.chunks[-1].pack)
    remote.blobs[key] = remote.blobs[key][:-10]
    with _file(manifest, remote) as f, pytest.raises(IntegrityError, match="ended early"):
        f.read()


def test_a_remote_sending_more_than_asked_is_refused(obj) -> None:
    _data_, manifest, remote = obj

    class Chatty(MemoryRemote):
        def get(self, key, sink, offset=0, progress=None, length=None) -> None:
            super().get(key, sink, offset, progress, length)
            sink.write(b"extra")

    chatty = Chatty(remote.blobs)
    with _file(manifest, chatty) as f, pytest.raises(IntegrityError, match="more bytes"):
        f.read(10)


def test_a_forged_manifest_of_valid_chunks_fails_the_whole_object_check() -> None:
    """Every chunk matches its hash, but the chunks are another object's: only the
    whole-object sha256 can tell, and the read that reaches the end raises."""
    data = _data(sum(SIZES))
    other = _data(sum(SIZES), seed=2)
    forged, remote = _build(other, SIZES)
    manifest = replace(forged, oid=hashlib.sha256(data).hexdigest())
    with _file(manifest, remote) as f:
        head = f.read(len(other) - 1)
        assert head == other[:-1]  # each chunk is what the manifest says...
        with pytest.raises(IntegrityError, match="failed verification"):
            f.read(1)  # ...but the last byte is withheld: the object is not the pointer's
        with pytest.raises(IntegrityError):
            f.read(1)
        assert not f.verified


# --- ArtifactFile: file semantics ---------------------------------------------------------


def _local(data: bytes, oid: str | None = None) -> ArtifactFile:
    pointer = Pointer(oid or hashlib.sha256(data).hexdigest(), len(data))
    return ArtifactFile(FileSource(io.BytesIO(data), len(data)), "x.bin", "HEAD", pointer, "store")


def test_file_object_seek_tell_readinto_readline() -> None:
    data = b"line one\nline two\n" + bytes(range(256)) * 10
    with _local(data) as f:
        assert f.readable() and f.seekable() and not f.writable()
        assert f.readline() == b"line one\n"
        assert f.tell() == 9
        assert f.readline() == b"line two\n"
        buf = bytearray(10)
        assert f.readinto(buf) == 10 and bytes(buf) == data[18:28]
        assert f.seek(-5, io.SEEK_END) == len(data) - 5
        assert f.read() == data[-5:]
        assert f.read(10) == b""
        f.seek(0)
        assert f.read() == data and f.verified
        with pytest.raises(ValueError):
            f.seek(-1)
        with pytest.raises(io.UnsupportedOperation):
            f.write(b"x")
    assert f.closed
    with pytest.raises(ValueError):
        f.read()


def test_a_damaged_local_object_fails_at_the_end_of_a_full_read() -> None:
    data = bytes(range(256)) * 100
    with _local(data, oid=hashlib.sha256(b"something else").hexdigest()) as f:
        f.seek(100)
        assert f.read(100) == data[100:200]  # ranged reads trust the store
        f.seek(0)
        assert f.read(len(data) - 1) == data[:-1]
        with pytest.raises(IntegrityError, match="failed verification"):
            f.read()


def test_an_empty_object_is_checked_too() -> None:
    with _local(b"") as f:
        assert f.read() == b"" and f.verified
    with _local(b"", oid="0" * 64) as f, pytest.raises(IntegrityError):
        f.read()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50_000), st.integers(0, 4000)), min_size=1, max_size=30))
def test_interleaved_reads_always_match(reads: list[tuple[int, int]]) -> None:
    data = _data(sum(SIZES), seed=3)
    manifest, remote = _build(data, SIZES)
    with _file(manifest, remote, cache_bytes=5000) as f:
        for offset, length in reads:
            f.seek(offset)
            assert f.read(length) == data[offset : offset + length]


# --- tensors: dtypes ------------------------------------------------------------------------


def test_tensor_dtypes_and_bf16() -> None:
    np = pytest.importorskip("numpy")
    from gitmlx.api.tensors import _read
    from gitmlx.diffs.safetensors import Tensor

    f32 = np.array([[1.5, -2.0], [3.25, 1e-3]], dtype="<f4")
    bf16_bits = (f32.view("<u4") >> 16).astype("<u2")  # exact for these values
    i8 = np.array([-1, 2, 3], dtype="i1")
    blob = f32.tobytes() + bf16_bits.tobytes() + i8.tobytes() + np.array([True, False]).tobytes()
    with _local(blob) as f:
        got = _read(np, f, 0, Tensor("w", "F32", (2, 2), 0, 16), "x", "float32")
        assert got.dtype == np.float32 and np.array_equal(got, f32)
        as_f32 = _read(np, f, 0, Tensor("b", "BF16", (2, 2), 16, 24), "x", "float32")
        assert as_f32.dtype == np.float32
        assert np.array_equal(as_f32, (bf16_bits.astype("<u4") << 16).view("<f4"))
        assert np.array_equal(as_f32[0], [1.5, -2.0])
        raw = _read(np, f, 0, Tensor("b", "BF16", (2, 2), 16, 24), "x", "uint16")
        assert raw.dtype == np.uint16 and np.array_equal(raw, bf16_bits)
        assert np.array_equal(_read(np, f, 0, Tensor("i", "I8", (3,), 24, 27), "x", "float32"), i8)
        flags = _read(np, f, 0, Tensor("m", "BOOL", (2,), 27, 29), "x", "float32")
        assert flags.dtype == np.bool_ and flags.tolist() == [True, False]
        assert _read(np, f, 0, Tensor("e", "F32", (0, 3), 29, 29), "x", "float32").shape == (0, 3)
        got.fill(0)  # arrays are writable: they own their memory
