"""gitmlx.api.tensor_diff: which tensors changed, proven by chunk hashes where they can
and by fetched bytes where they cannot. Against in-memory sources: no remote, no git."""

from __future__ import annotations

import hashlib
import io
import json
import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from gitmlx.api import tensor_diff
from gitmlx.api.lazy import chunk_starts
from gitmlx.api.reader import FileSource
from gitmlx.format import chunking
from gitmlx.format.manifest import CODEC_RAW, ChunkRef


def safetensors_bytes(tensors: dict[str, bytes]) -> bytes:
    header: dict[str, object] = {}
    offset = 0
    for name, data in tensors.items():
        header[name] = {"dtype": "U8", "shape": [len(data)], "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(tensors.values())


class Counting(FileSource):
    """An in-memory file that counts the bytes read from it (a stand-in for the remote)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data), len(data))
        self.read_bytes = 0

    def pieces(self, offset: int, length: int, sequential: bool = False):
        for piece in super().pieces(offset, length, sequential):
            self.read_bytes += len(piece)
            yield piece


def chunked(data: bytes) -> tuple[tensor_diff.Bytes, Counting]:
    """A side as the remote serves it: its bytes and the chunks its manifest lists."""
    refs = [
        ChunkRef(hashlib.sha256(c).digest(), "a" * 64, 0, len(c), len(c), CODEC_RAW)
        for c in (bytes(view) for view in chunking.chunks(io.BytesIO(data)))
    ]
    source = Counting(data)
    return tensor_diff.Bytes(source, chunk_starts(refs), refs), source


def local(data: bytes) -> tensor_diff.Bytes:
    return tensor_diff.Bytes(FileSource(io.BytesIO(data), len(data)))


def changed_names(a: tensor_diff.Bytes, b: tensor_diff.Bytes) -> list[str]:
    old, new = tensor_diff._items(a, "safetensors", "m"), tensor_diff._items(b, "safetensors", "m")
    return [line.split()[1] for line in tensor_diff._compare(old, new, a, b)[1]]


def model(count: int, size: int, seed: int) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"t{i}": rng.randbytes(size) for i in range(count)}


def test_one_changed_tensor_is_named_and_costs_a_few_chunks() -> None:
    tensors = model(24, 512 * 1024, seed=1)
    v1 = safetensors_bytes(tensors)
    v2 = safetensors_bytes({**tensors, "t9": random.Random(2).randbytes(512 * 1024)})
    (a, ra), (b, rb) = chunked(v1), chunked(v2)

    assert changed_names(a, b) == ["t9"]
    # Its neighbours' shared chunks and one chunk of t9 on each side, not 12 MiB.
    assert ra.read_bytes + rb.read_bytes < 6 * chunking.MAX_SIZE


def test_a_local_side_is_hashed_against_the_remote_sides_chunks() -> None:
    tensors = model(24, 256 * 1024, seed=3)
    v2 = safetensors_bytes({**tensors, "t0": bytes(256 * 1024), "t23": random.Random(4).randbytes(256 * 1024)})
    remote, fetched = chunked(safetensors_bytes(tensors))

    assert changed_names(remote, local(v2)) == ["t0", "t23"]
    assert changed_names(local(v2), remote) == ["t0", "t23"]
    assert fetched.read_bytes < 8 * chunking.MAX_SIZE


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 70_000), min_size=1, max_size=8),
    edits=st.lists(st.tuples(st.integers(0, 7), st.floats(0, 1), st.booleans()), max_size=4),
    seed=st.integers(0, 2**16),
)
def test_the_changed_tensors_are_exactly_those_whose_bytes_differ(sizes, edits, seed) -> None:
    rng = random.Random(seed)
    before = {f"t{i}": rng.randbytes(n) for i, n in enumerate(sizes)}
    after = dict(before)
    for index, where, whole in edits:
        name = f"t{index % len(sizes)}"
        data = bytearray(after[name])
        if not data:
            continue
        if whole:
            data = bytearray(rng.randbytes(len(data)))
        else:  # one byte flipped, anywhere in the tensor
            data[int(where * (len(data) - 1))] ^= 0x5A
        after[name] = bytes(data)
    v1, v2 = safetensors_bytes(before), safetensors_bytes(after)
    truth = sorted(n for n in before if before[n] != after[n])

    assert sorted(changed_names(chunked(v1)[0], chunked(v2)[0])) == truth
    assert sorted(changed_names(chunked(v1)[0], local(v2))) == truth
