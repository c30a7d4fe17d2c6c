"""The reject rules of "Shards (format 2)", "Finding an object's manifest (format 2)" and
"Byte-grouped chunks (codec 2)" in docs/storage-format.md, each checked against the
from-spec reader on bytes built here from the doc's tables (no gitmlx code), so that a
reader that stops enforcing one is noticed."""

from __future__ import annotations

import hashlib
import struct
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from tests.spec_reader import reader

EMPTY_OID = hashlib.sha256(b"").hexdigest()


def _manifest(data: bytes, pack: str, codec: int = 0, stored: bytes | None = None) -> bytes:
    """The manifest of `data` stored as one chunk at offset 0 of `pack` (none if empty)."""
    oid = hashlib.sha256(data).digest()
    if not data:
        body = b"MLXMAN01" + oid + struct.pack("<QII", 0, 0, 0)
    else:
        stored = data if stored is None else stored
        record = hashlib.sha256(data).digest() + struct.pack("<IQIIB", 0, 0, len(stored), len(data), codec)
        body = b"MLXMAN01" + oid + struct.pack("<QII", len(data), 1, 1) + bytes.fromhex(pack) + record
    return body + hashlib.sha256(body).digest()


def _shard(manifests: dict[str, bytes], reserved: int = 0) -> bytes:
    """A shard as "Shards (format 2)" lays it out: sorted table, manifests, trailer."""
    oids = sorted(manifests)
    offset = 16 + 56 * len(oids)
    table = b""
    for oid in oids:
        table += bytes.fromhex(oid) + struct.pack("<QQQ", 0, offset, len(manifests[oid]))
        offset += len(manifests[oid])
    body = b"MLXSHD01" + struct.pack("<II", len(oids), reserved) + table + b"".join(manifests[o] for o in oids)
    return body + hashlib.sha256(body).digest()


def _rehash(body: bytes) -> tuple[bytes, str]:
    """`body` (a shard without its trailer) made whole again, and its name."""
    data = body + hashlib.sha256(body).digest()
    return data, hashlib.sha256(data).hexdigest() + ".shard"


def test_a_valid_shard_parses() -> None:
    empty = _manifest(b"", "")
    other = _manifest(b"x", "ab" * 32)
    data = _shard({EMPTY_OID: empty, reader.sha256(b"x"): other})
    table = reader.parse_shard(data, hashlib.sha256(data).hexdigest() + ".shard")
    assert table[EMPTY_OID] == (16 + 2 * 56 + len(other) if reader.sha256(b"x") < EMPTY_OID else 16 + 2 * 56, 88)
    offset, length = table[EMPTY_OID]
    assert data[offset : offset + length] == empty


@pytest.mark.parametrize(
    "damage",
    ["magic", "reserved", "count", "short", "order", "twice", "length-small", "length-big", "range", "trailer", "name"],
)
def test_the_reader_rejects_a_broken_shard(damage: str) -> None:
    manifests = {EMPTY_OID: _manifest(b"", ""), reader.sha256(b"x"): _manifest(b"x", "ab" * 32)}
    body = bytearray(_shard(manifests)[:-32])
    entry = 16  # the first entry's offset in the table
    if damage == "magic":
        body[0:8] = b"MLXSHD02"
    elif damage == "reserved":
        body[12:16] = struct.pack("<I", 1)
    elif damage == "count":
        body[8:12] = struct.pack("<I", 1_000_001)
    elif damage == "short":
        body[8:12] = struct.pack("<I", 40)  # a table longer than the file
    elif damage in ("order", "twice"):
        first, second = bytes(body[entry : entry + 56]), bytes(body[entry + 56 : entry + 112])
        body[entry : entry + 112] = second + first if damage == "order" else first + first[:32] + second[32:]
    elif damage == "length-small":
        body[entry + 48 : entry + 56] = struct.pack("<Q", 87)
    elif damage == "length-big":
        body[entry + 48 : entry + 56] = struct.pack("<Q", (1 << 30) + 1)
    elif damage == "range":
        body[entry + 40 : entry + 48] = struct.pack("<Q", len(body) - 80)  # runs into the trailer
    data, name = _rehash(bytes(body))
    if damage == "trailer":
        data = data[:-1] + bytes([data[-1] ^ 1])
        name = hashlib.sha256(data).hexdigest() + ".shard"
    elif damage == "name":
        name = "0" * 64 + ".shard"
    with pytest.raises(reader.SpecError):
        reader.parse_shard(data, name)


def _remote(root: Path, fmt: int = 2) -> None:
    root.mkdir(parents=True)
    (root / "mlx-remote.json").write_bytes(b'{"format": %d, "tool": "gitmlx"}\n' % fmt)


def _put_pack(root: Path, data: bytes) -> str:
    pack = reader.sha256(data)
    path = reader.pack_path(root, pack)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return pack


def _put_shard(root: Path, manifests: dict[str, bytes]) -> Path:
    data = _shard(manifests)
    path = root / "shards" / f"{reader.sha256(data)}.shard"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_lookup_uses_shards_then_falls_back_to_the_format1_key(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    _remote(root)
    in_shard, in_key = b"held by a shard", b"held by a format-1 key (an upgraded remote)"
    _put_shard(root, {reader.sha256(in_shard): _manifest(in_shard, _put_pack(root, in_shard))})
    key = reader.manifest_path(root, reader.sha256(in_key))
    key.parent.mkdir(parents=True)
    key.write_bytes(_manifest(in_key, _put_pack(root, in_key)))
    (root / "shards" / "README").write_bytes(b"an unknown key")
    for data in (in_shard, in_key):
        assert reader.read_object(root, reader.sha256(data), len(data)) == data
    with pytest.raises(reader.SpecError, match="no manifest"):
        reader.find_manifest(root, reader.sha256(b"absent"))


def test_a_rejected_shard_contributes_no_entry_and_another_manifest_is_used(tmp_path: Path) -> None:
    """The same oid in a damaged shard and in a good one (or a key): the good one is used;
    when only the damaged shard names it, the object is not found."""
    root = tmp_path / "remote"
    _remote(root)
    data = b"named twice"
    oid = reader.sha256(data)
    manifest = _manifest(data, _put_pack(root, data))
    bad = _put_shard(root, {oid: manifest})
    broken = bytearray(bad.read_bytes())
    broken[12] = 1  # the reserved field, so the bytes no longer hash to the name either
    bad.write_bytes(bytes(broken))
    with pytest.raises(reader.SpecError, match="no manifest"):
        reader.find_manifest(root, oid)
    _put_shard(root, {oid: manifest, EMPTY_OID: _manifest(b"", "")})
    assert reader.read_object(root, oid, len(data)) == data
    assert reader.read_object(root, EMPTY_OID, 0) == b""


def test_a_format1_remote_is_read_by_key_only(tmp_path: Path) -> None:
    root = tmp_path / "remote"
    _remote(root, fmt=1)
    data = b"only in a shard, which format 1 does not have"
    _put_shard(root, {reader.sha256(data): _manifest(data, _put_pack(root, data))})
    with pytest.raises(reader.SpecError, match="no manifest"):
        reader.find_manifest(root, reader.sha256(data))


def _grouped(raw: bytes, width: int, compress: tuple[int, ...] = ()) -> bytes:
    """Codec 2's stored form, from the doc's table: planes `compress` names as zstd frames."""
    n = len(raw) // width
    planes = [raw[j : n * width : width] for j in range(width)]
    planes = [zstandard.ZstdCompressor().compress(p) if j in compress else p for j, p in enumerate(planes)]
    lengths = struct.pack(f"<{width}I", *map(len, planes))
    return bytes([width]) + lengths + raw[n * width :] + b"".join(planes)


def _decode(raw: bytes, stored: bytes) -> bytes:
    chunk = reader.Chunk(hashlib.sha256(raw).digest(), "0" * 64, 0, len(stored), len(raw), 2)
    return reader.decode_chunk(chunk, stored)


def test_grouped_chunks_decode_with_verbatim_and_compressed_planes() -> None:
    raw = bytes(i % 7 for i in range(10_003))
    for width in (2, 4, 8):
        for compress in ((), (0,), tuple(range(width))):
            assert _decode(raw, _grouped(raw, width, compress)) == raw


def _frame(content: bytes, **options: bool) -> bytes:
    return zstandard.ZstdCompressor(**options).compress(content)


@pytest.mark.parametrize(
    "damage",
    [
        "empty",
        "width 3",
        "R < W",
        "short header",
        "plane length 0",
        "plane length above N",
        "S too long",
        "S too short",
        "bytes after a frame",
        "a skippable frame",
        "frame of another length",
        "declared size",
        "verbatim plane damaged",
    ],
)
def test_the_reader_rejects_a_broken_grouped_chunk(damage: str) -> None:
    raw = bytes(i % 5 for i in range(1002))  # N = 250, T = 2 at width 4
    stored = bytearray(_grouped(raw, 4, compress=(0,)))
    planes_at = 1 + 16 + 2
    plane0 = len(_frame(raw[0:1000:4]))
    if damage == "empty":
        stored = bytearray()
    elif damage == "width 3":
        stored[0] = 3
    elif damage == "R < W":
        raw, stored = raw[:1], bytearray(b"\x02" + bytes(8) + raw[:1])
    elif damage == "short header":
        stored = stored[:18]
    elif damage == "plane length 0":
        stored[5:9] = struct.pack("<I", 0)
    elif damage == "plane length above N":
        stored[5:9] = struct.pack("<I", 251)
    elif damage == "S too long":
        stored += b"\0"
    elif damage == "S too short":
        del stored[-1]
    elif damage in ("bytes after a frame", "a skippable frame", "frame of another length", "declared size"):
        plane = raw[0:1000:4]
        frame = {
            "bytes after a frame": _frame(plane) + b"\0",
            "a skippable frame": bytes.fromhex("502a4d18") + bytes(4) + _frame(plane),
            "frame of another length": _frame(plane[:-1], write_content_size=False),
            "declared size": _frame(plane[:-1] + b"\0\0"),  # declares N + 1
        }[damage]
        stored[1:5] = struct.pack("<I", len(frame))
        stored[planes_at : planes_at + plane0] = frame
    elif damage == "verbatim plane damaged":
        stored[-1] ^= 0xFF
    with pytest.raises(reader.SpecError):
        _decode(raw, bytes(stored))


def test_a_bomb_plane_never_allocates_past_n() -> None:
    """A frame without a content size that would expand to 64 MiB: the reader asks zstd
    for at most N bytes and rejects it, rather than decoding it whole."""
    raw = bytes(40_000)  # N = 10,000 at width 4
    bomb = _frame(bytes(64 * 1024 * 1024), write_content_size=False)
    assert len(bomb) < 10_000 and zstandard.get_frame_parameters(bomb).window_size <= 8 << 20
    planes = [bomb] + [raw[j:40_000:4] for j in (1, 2, 3)]
    stored = bytes([4]) + struct.pack("<4I", *map(len, planes)) + b"".join(planes)
    tracemalloc.start()
    try:
        with pytest.raises(reader.SpecError, match="zstd"):
            _decode(raw, stored)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"decoding a 40 KB chunk allocated {peak} bytes"
