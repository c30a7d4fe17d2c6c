"""A second implementation of the remote format's read side, written from
docs/storage-format.md and docs/pointer-format.md alone (stdlib + `zstandard`).

It owns nothing gitmlx uses: it exists so that the spec, not gitmlx's code, is what a
test checks a remote against. If this reader needs a fact the docs do not state, the docs
are what is wrong. It must not import gitmlx.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import zstandard

MAGIC = b"MLXMAN01"
# "Shards (format 2)": header, 56-byte entries, the bounds a reader enforces.
SHARD_MAGIC = b"MLXSHD01"
SHARD_HEADER = struct.Struct("<8sII")
SHARD_ENTRY = struct.Struct("<32sQQQ")
SHARD_MAX_ENTRIES = 1_000_000
SHARD_MIN_MANIFEST = 88
SHARD_MAX_MANIFEST = 1 << 30
SHARD_NAME = re.compile(r"([0-9a-f]{64})\.shard")
HEADER = struct.Struct("<8s32sQII")
RECORD = struct.Struct("<32sIQIIB")
MAX_RAW = 262_144
MAX_STORED = 266_240
MARKER_LIMIT = 4096
#: The codecs a manifest may name, by remote format ("Manifest"; codec 2: "Byte-grouped chunks").
CODECS = {1: (0, 1), 2: (0, 1, 2)}
GROUP_WIDTHS = (2, 4, 8)
ZSTD_MAGIC = bytes.fromhex("28b52ffd")
WINDOW_LIMIT = 1 << 23  # the spec's bound on a frame's window (8 MiB)
OID = re.compile(r"[0-9a-f]{64}")
POINTER = re.compile(
    rb"version https://gitmlx\.dev/spec/v1\n"
    rb"oid sha256:([0-9a-f]{64})\n"
    rb"size (0|[1-9][0-9]{0,18})\n"
)


class SpecError(Exception):
    """The remote breaks a rule of the spec (or holds damaged bytes)."""


@dataclass(frozen=True)
class Chunk:
    hash: bytes
    pack: str
    offset: int
    stored: int
    raw: int
    codec: int


@dataclass(frozen=True)
class Manifest:
    oid: str
    size: int
    packs: tuple[str, ...]
    chunks: tuple[Chunk, ...]


def parse_pointer(blob: bytes) -> tuple[str, int]:
    """The (oid, size) a gitmlx pointer names; SpecError for anything else."""
    m = POINTER.fullmatch(blob)
    if m is None or int(m.group(2)) > 2**63 - 1:
        raise SpecError("not a gitmlx pointer")
    return m.group(1).decode(), int(m.group(2))


def default_root(remote_git_dir: Path) -> Path:
    """The embedded default remote of a local git remote: its git directory + `/mlx`."""
    return Path(remote_git_dir) / "mlx"


def check_marker(root: Path) -> int:
    """The remote's format, once its marker is found valid."""
    path = Path(root) / "mlx-remote.json"
    if not path.is_file():
        raise SpecError(f"{path}: no format marker")
    data = path.read_bytes()
    if len(data) > MARKER_LIMIT:
        raise SpecError(f"{path}: marker over 4 KiB")
    try:
        marker = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise SpecError(f"{path}: unreadable marker") from exc
    if not isinstance(marker, dict):
        raise SpecError(f"{path}: marker is not a JSON object")
    fmt = marker.get("format")
    if type(fmt) is not int or fmt not in (1, 2):
        raise SpecError(f"{path}: format {fmt!r} is not 1 or 2")
    return fmt


def manifest_path(root: Path, oid: str) -> Path:
    return Path(root) / "manifests" / oid[0:2] / oid[2:4] / oid


def parse_shard(data: bytes, name: str) -> dict[str, tuple[int, int]]:
    """oid -> (manifest offset, length) of a whole shard named `name` (its id), after every
    check the spec lists for a reader of a whole shard."""
    if hashlib.sha256(data).hexdigest() != name:
        raise SpecError(f"shard {name}: bytes do not hash to its name")
    if len(data) < SHARD_HEADER.size + 32 or hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise SpecError(f"shard {name}: trailer wrong")
    magic, count, reserved = SHARD_HEADER.unpack_from(data, 0)
    if magic != SHARD_MAGIC or reserved != 0 or count > SHARD_MAX_ENTRIES:
        raise SpecError(f"shard {name}: bad header")
    table_end = SHARD_HEADER.size + SHARD_ENTRY.size * count
    if len(data) < table_end + 32:
        raise SpecError(f"shard {name}: shorter than its table")
    entries: dict[str, tuple[int, int]] = {}
    previous = b""
    for i in range(count):
        raw_oid, _size, offset, length = SHARD_ENTRY.unpack_from(data, SHARD_HEADER.size + SHARD_ENTRY.size * i)
        if raw_oid <= previous:
            raise SpecError(f"shard {name}: entries not in strictly ascending oid order")
        previous = raw_oid
        if not SHARD_MIN_MANIFEST <= length <= SHARD_MAX_MANIFEST:
            raise SpecError(f"shard {name}: manifest length {length} out of range")
        if offset < table_end or offset + length > len(data) - 32:
            raise SpecError(f"shard {name}: an entry points outside the manifest area")
        entries[raw_oid.hex()] = (offset, length)
    return entries


def find_manifest(root: Path, oid: str) -> bytes:
    """The manifest bytes of `oid`: its key in format 1; in format 2 a shard entry first,
    then the format-1 key ("Finding an object's manifest")."""
    root = Path(root)
    if check_marker(root) == 2 and (root / "shards").is_dir():
        for path in sorted((root / "shards").iterdir()):
            m = SHARD_NAME.fullmatch(path.name)
            if not m or not path.is_file():
                continue  # an unknown key: never read
            data = path.read_bytes()
            where = parse_shard(data, m.group(1)).get(oid)
            if where is not None:
                return data[where[0] : where[0] + where[1]]
    path = manifest_path(root, oid)
    if not path.is_file():
        raise SpecError(f"{path}: no manifest for {oid}")
    return path.read_bytes()


def pack_path(root: Path, pack: str) -> Path:
    return Path(root) / "packs" / pack[0:2] / f"{pack}.pack"


def parse_manifest(data: bytes, oid: str, size: int | None = None, codecs: tuple[int, ...] = CODECS[1]) -> Manifest:
    """Every check the spec lists for a manifest; `size` None skips the pointer-size check;
    `codecs`: those the remote's format allows."""
    if len(data) < HEADER.size + 32:
        raise SpecError("manifest too short")
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise SpecError("manifest checksum wrong")
    magic, digest, total, npacks, nchunks = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise SpecError("manifest magic differs")
    if digest.hex() != oid or (size is not None and total != size):
        raise SpecError("manifest names another object")
    if len(data) != HEADER.size + 32 * npacks + RECORD.size * nchunks + 32:
        raise SpecError("manifest length wrong")
    pos = HEADER.size
    packs = tuple(data[pos + 32 * i : pos + 32 * i + 32].hex() for i in range(npacks))
    pos += 32 * npacks
    chunks = []
    for i in range(nchunks):
        h, index, offset, stored, raw, codec = RECORD.unpack_from(data, pos + RECORD.size * i)
        if index >= npacks:
            raise SpecError("pack index out of range")
        if codec not in codecs:
            raise SpecError(f"unknown codec {codec}")
        if not 0 < raw <= MAX_RAW or not 0 < stored <= MAX_STORED:
            raise SpecError("chunk length out of range")
        if codec == 0 and stored != raw:
            raise SpecError("raw chunk stored with another length")
        chunks.append(Chunk(h, packs[index], offset, stored, raw, codec))
    if sum(c.raw for c in chunks) != total:
        raise SpecError("chunk lengths do not add up to the size")
    return Manifest(oid, total, packs, tuple(chunks))


def decode_chunk(chunk: Chunk, stored: bytes) -> bytes:
    """The raw chunk, verified against its hash (the spec makes this a MUST)."""
    if chunk.codec == 2:
        raw = _ungroup(stored, chunk.raw)
    else:
        raw = stored if chunk.codec == 0 else _unzstd(stored, chunk.raw)
    if len(raw) != chunk.raw or hashlib.sha256(raw).digest() != chunk.hash:
        raise SpecError(f"chunk {chunk.hash.hex()} does not match its hash")
    return raw


def _unzstd(stored: bytes, limit: int) -> bytes:
    """One complete frame, nothing after it, at most `limit` bytes out."""
    try:
        params = zstandard.get_frame_parameters(stored)
    except zstandard.ZstdError as exc:
        raise SpecError(f"bad zstd frame header: {exc}") from exc
    if params.dict_id != 0:
        raise SpecError("zstd frame uses a dictionary")
    if params.window_size > WINDOW_LIMIT:
        raise SpecError("zstd window too large")
    if params.content_size != zstandard.CONTENTSIZE_UNKNOWN and params.content_size != limit:
        raise SpecError("zstd frame declares another content size")
    dobj = zstandard.ZstdDecompressor(max_window_size=WINDOW_LIMIT).decompressobj()
    try:
        out = dobj.decompress(stored)
    except zstandard.ZstdError as exc:
        raise SpecError(f"bad zstd frame: {exc}") from exc
    if not dobj.eof or dobj.unused_data or len(out) > limit:
        raise SpecError("stored chunk is not exactly one zstd frame of the raw length")
    return out


def _ungroup(stored: bytes, raw: int) -> bytes:
    """A codec 2 chunk: width byte, W u32 plane lengths, the T tail bytes, then W planes,
    each verbatim (length N) or one zstd frame of N bytes (shorter than N)."""
    if not stored or stored[0] not in GROUP_WIDTHS:
        raise SpecError("byte-grouped chunk: width not 2, 4 or 8")
    width = stored[0]
    groups, tail = raw // width, raw % width
    header = 1 + 4 * width
    if groups == 0:
        raise SpecError("byte-grouped chunk shorter than its width")
    if len(stored) < header + tail:
        raise SpecError("byte-grouped chunk shorter than its header")
    lengths = struct.unpack("<" + "I" * width, stored[1:header])
    if any(n == 0 or n > groups for n in lengths):
        raise SpecError("byte-grouped chunk: a plane length is 0 or above N")
    if header + tail + sum(lengths) != len(stored):
        raise SpecError("byte-grouped chunk: lengths do not add up to the stored length")
    # Plane j starts at header + T + L0 + ... + L(j-1); byte i of it is raw byte j + i*W.
    starts = [header + tail + sum(lengths[:j]) for j in range(width)]
    planes = [_plane(stored[a : a + n], groups, j) for j, (a, n) in enumerate(zip(starts, lengths, strict=True))]
    out = bytearray(raw)
    for i in range(groups):
        for j in range(width):
            out[i * width + j] = planes[j][i]
    out[groups * width :] = stored[header : header + tail]
    return bytes(out)


def _plane(part: bytes, groups: int, j: int) -> bytes:
    """Plane j's N bytes: verbatim when it is N bytes long, else one zstd frame of them."""
    if len(part) == groups:
        return part
    if not part.startswith(ZSTD_MAGIC):
        raise SpecError(f"byte-grouped chunk: plane {j} is not a zstd frame")
    data = _unzstd(part, groups)
    if len(data) != groups:
        raise SpecError(f"byte-grouped chunk: plane {j} has the wrong length")
    return data


def read_range(root: Path, pack: str, offset: int, length: int) -> bytes:
    with open(pack_path(root, pack), "rb") as f:
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise SpecError(f"pack {pack} shorter than a chunk's range")
    return data


def read_object(root: Path, oid: str, size: int | None = None, codecs: tuple[int, ...] | None = None) -> bytes:
    """Rebuild object `oid` from a directory remote and verify it (chunks, size, sha256).
    `codecs`: those the manifests may name, if not those of the marker's format."""
    if not OID.fullmatch(oid):
        raise SpecError(f"{oid!r} is not an oid")
    fmt = check_marker(root)
    manifest = parse_manifest(find_manifest(root, oid), oid, size, codecs or CODECS[fmt])
    parts = [decode_chunk(c, read_range(root, c.pack, c.offset, c.stored)) for c in manifest.chunks]
    data = b"".join(parts)
    if len(data) != manifest.size or hashlib.sha256(data).hexdigest() != oid:
        raise SpecError(f"object {oid} rebuilt with wrong bytes")
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
