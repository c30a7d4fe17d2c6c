"""A second implementation of the remote format's read side, written from
docs/storage-format.md and docs/pointer-format.md alone (stdlib + `zstandard`).

Who wrote what: the format 1 parts (pointer, marker, manifest, reading an object) were
written by the engineers who wrote those doc sections. The format 2 parts (shards,
finding an object's manifest) and codec 2 (byte-grouped chunks), below the marked line,
were written by a second implementer from the doc text alone, without reading gitmlx's
code or an earlier reader of those sections; what the doc lacked was fixed in the doc.

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
HEADER = struct.Struct("<8s32sQII")
RECORD = struct.Struct("<32sIQIIB")
MAX_RAW = 262_144
MAX_STORED = 266_240
MARKER_LIMIT = 4096
#: The codecs a manifest may name, by remote format ("Manifest"; codec 2: "Byte-grouped chunks").
CODECS = {1: (0, 1), 2: (0, 1, 2)}
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


def pack_path(root: Path, pack: str) -> Path:
    return Path(root) / "packs" / pack[0:2] / f"{pack}.pack"


def parse_manifest(data: bytes, oid: str, size: int | None, codecs: tuple[int, ...]) -> Manifest:
    """Every check the spec lists for a manifest; `size` None skips the pointer-size check;
    `codecs`: those the remote's format allows (no default: a reader always knows the
    format it read from the marker)."""
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


# "Pack ids": what a writer names a pack (a reader never checks it; this checks writers).
PACK_TABLE_TAG = b"gitmlx pack table 1\n"


def pack_id_kind(root: Path, pack: str, chunks: list[Chunk]) -> str:
    """'byte' when pack `pack` is named by the SHA-256 of its bytes, 'table' when by its
    table id; `chunks`: every chunk the manifests place in it, which must cover it whole,
    back to back (else its table is unknown: SpecError)."""
    data = pack_path(root, pack).read_bytes()
    if sha256(data) == pack:
        return "byte"
    spans = sorted({(c.offset, c.stored) for c in chunks if c.pack == pack})
    end = 0
    table = hashlib.sha256(PACK_TABLE_TAG)
    for offset, stored in spans:
        if offset != end:
            raise SpecError(f"pack {pack}: chunks do not cover it back to back at {end}")
        table.update(hashlib.sha256(data[offset : offset + stored]).digest() + struct.pack("<Q", stored))
        end = offset + stored
    if end != len(data):
        raise SpecError(f"pack {pack}: chunks end at {end}, the pack at {len(data)}")
    if table.hexdigest() != pack:
        raise SpecError(f"pack {pack} is named by neither its byte id nor its table id")
    return "table"


# ---------------------------------------------------------------------------------------
# Format 2 and codec 2, written by a second implementer from docs/storage-format.md alone
# ("Shards (format 2)", "Finding an object's manifest (format 2)", "Byte-grouped chunks
# (codec 2)", the zstd frame rules of "Pack"), without reading gitmlx's code.
# ---------------------------------------------------------------------------------------

SHARD_MAGIC = b"MLXSHD01"
SHARD_HEADER = struct.Struct("<8sII")  # magic, entry count E, reserved (MUST be 0)
SHARD_ENTRY = struct.Struct("<32sQQQ")  # oid, object size, manifest offset, manifest length
SHARD_MAX_ENTRIES = 1_000_000
SHARD_MIN_MANIFEST = 88  # the empty object's manifest, the shortest there is
SHARD_MAX_MANIFEST = 1 << 30
SHARD_NAME = re.compile(r"([0-9a-f]{64})\.shard")
GROUP_WIDTHS = (2, 4, 8)
ZSTD_MAGIC = bytes.fromhex("28b52ffd")
WINDOW_LIMIT = 1 << 23  # "Pack": a frame's window is at most 8 MiB


def parse_shard(data: bytes, name: str) -> dict[str, tuple[int, int]]:
    """oid -> (offset, length) of its manifest in the shard `data` read whole, after every
    check "Shards (format 2)" makes a reader do; `name` is the shard's key name
    (`<id>.shard`) or id, which the bytes must hash to."""
    shard_id = name[: -len(".shard")] if name.endswith(".shard") else name
    if not OID.fullmatch(shard_id):
        raise SpecError(f"shard {name!r}: not a shard name")
    if hashlib.sha256(data).hexdigest() != shard_id:
        raise SpecError(f"shard {name}: bytes do not hash to its name")
    if len(data) < SHARD_HEADER.size + 32:
        raise SpecError(f"shard {name}: shorter than a header and a trailer")
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise SpecError(f"shard {name}: trailer checksum wrong")
    magic, count, reserved = SHARD_HEADER.unpack_from(data, 0)
    if magic != SHARD_MAGIC:
        raise SpecError(f"shard {name}: magic differs")
    if reserved != 0:
        raise SpecError(f"shard {name}: reserved field is not 0")
    if count > SHARD_MAX_ENTRIES:
        raise SpecError(f"shard {name}: {count} entries, above {SHARD_MAX_ENTRIES}")
    start = SHARD_HEADER.size + SHARD_ENTRY.size * count
    end = len(data) - 32
    if len(data) < start + 32:
        raise SpecError(f"shard {name}: shorter than its table")
    table: dict[str, tuple[int, int]] = {}
    previous = b""
    for k in range(count):
        oid, _size, offset, length = SHARD_ENTRY.unpack_from(data, SHARD_HEADER.size + SHARD_ENTRY.size * k)
        if k and oid <= previous:
            raise SpecError(f"shard {name}: entries not in strictly ascending oid order")
        if not SHARD_MIN_MANIFEST <= length <= SHARD_MAX_MANIFEST:
            raise SpecError(f"shard {name}: manifest length {length} out of range")
        if offset < start or offset + length > end:
            raise SpecError(f"shard {name}: manifest range outside the manifest area")
        previous = oid
        table[oid.hex()] = (offset, length)
    return table


def _list_shards(root: Path) -> list[str]:
    """The shard key names under `shards/`; every other name there is an unknown key."""
    folder = Path(root) / "shards"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if SHARD_NAME.fullmatch(p.name) and p.is_file())


def _shard_candidates(root: Path, oid: str, names: list[str], tables: dict) -> list[bytes] | None:
    """The manifests the listed shards hold for `oid`; None when a listed shard is gone.
    A shard a reader must reject contributes nothing (its entries are not used)."""
    found = []
    for name in names:
        try:
            data = (Path(root) / "shards" / name).read_bytes()
        except FileNotFoundError:
            return None
        if name not in tables:
            try:
                tables[name] = parse_shard(data, name)
            except SpecError:
                tables[name] = {}
        where = tables[name].get(oid)
        if where is not None:
            found.append(data[where[0] : where[0] + where[1]])
    return found


def find_manifest(root: Path, oid: str) -> bytes:
    """The manifest bytes of `oid` on a directory remote, found as the remote's format says:
    format 1 by its key; format 2 through the shards (list, read tables, list again once
    if a shard vanished or no table names the oid), then the format-1 key. Among several
    manifests of the object (several shards, a shard and a key), the first that validates."""
    key = manifest_path(root, oid)
    candidates: list[bytes] = []
    if check_marker(root) >= 2:
        tables: dict[str, dict[str, tuple[int, int]]] = {}
        for _attempt in range(2):
            found = _shard_candidates(root, oid, _list_shards(root), tables)
            if found:
                candidates = found
                break
    if key.is_file():
        candidates.append(key.read_bytes())
    reasons = []
    for data in candidates:
        try:
            parse_manifest(data, oid, None, CODECS[2])
        except SpecError as exc:
            reasons.append(str(exc))
            continue
        return data
    if reasons:
        raise SpecError(f"object {oid}: no valid manifest ({'; '.join(reasons)})")
    raise SpecError(f"object {oid}: no manifest on the remote")


def _frame_length(data: memoryview) -> int:
    """How many bytes the zstd frame at the start of `data` spans (RFC 8878: header, blocks,
    optional checksum); SpecError if `data` does not start with a complete frame."""
    if bytes(data[:4]) != ZSTD_MAGIC:
        raise SpecError("stored bytes do not start with a zstd frame")
    try:
        pos = zstandard.frame_header_size(bytes(data[:18]))
    except zstandard.ZstdError as exc:
        raise SpecError(f"bad zstd frame header: {exc}") from exc
    checksum = data[4] & 0x04
    while True:
        if pos + 3 > len(data):
            raise SpecError("zstd frame truncated")
        header = int.from_bytes(data[pos : pos + 3], "little")
        kind, size = (header >> 1) & 3, header >> 3
        if kind == 3:
            raise SpecError("zstd block of the reserved type")
        pos += 3 + (1 if kind == 1 else size)  # an RLE block stores one byte
        if header & 1:
            break
    pos += 4 if checksum else 0
    if pos > len(data):
        raise SpecError("zstd frame truncated")
    return pos


def _unzstd(stored: memoryview, raw: int) -> bytes:
    """The `raw` bytes one zstd frame holds, under "Pack"'s rules (no dictionary, window at
    most 8 MiB, content size absent or `raw`, checksum checked). The frame must end where
    `stored` does: a plane's MUST, and for a codec 1 chunk the stricter option the doc
    allows (writers MUST NOT put bytes after the frame). Never allocates more than `raw`
    bytes of output, whatever the header declares."""
    if _frame_length(stored) != len(stored):
        raise SpecError("bytes after the zstd frame")
    frame = bytes(stored)
    params = zstandard.get_frame_parameters(frame)
    if params.dict_id != 0:
        raise SpecError("zstd frame names a dictionary")
    if params.window_size > WINDOW_LIMIT:
        raise SpecError("zstd frame window above 8 MiB")
    if params.content_size != zstandard.CONTENTSIZE_UNKNOWN and params.content_size != raw:
        raise SpecError("zstd frame declares another content size")
    try:
        out = zstandard.ZstdDecompressor(max_window_size=WINDOW_LIMIT).decompress(frame, max_output_size=raw)
    except zstandard.ZstdError as exc:
        raise SpecError(f"zstd frame does not decode: {exc}") from exc
    if len(out) != raw:
        raise SpecError("zstd frame decodes to another length")
    return out


def _ungroup(stored: memoryview, raw: int) -> bytes:
    """A codec 2 chunk's raw bytes from its stored form, with every reject rule of
    "Byte-grouped chunks": output of `raw` bytes, one plane of N bytes at a time."""
    if not stored or stored[0] not in GROUP_WIDTHS:
        raise SpecError("byte-grouped chunk: width is not 2, 4 or 8")
    width = stored[0]
    groups = raw // width
    tail = raw - groups * width
    head = 1 + 4 * width + tail
    if groups == 0:
        raise SpecError("byte-grouped chunk shorter than its width")
    if len(stored) < head:
        raise SpecError("byte-grouped chunk shorter than its header")
    lengths = struct.unpack_from(f"<{width}I", stored, 1)
    if any(not 0 < n <= groups for n in lengths):
        raise SpecError("byte-grouped chunk: a plane length is 0 or above N")
    if len(stored) != head + sum(lengths):
        raise SpecError("byte-grouped chunk: stored length is not header + tail + planes")
    out = bytearray(raw)
    out[groups * width :] = stored[head - tail : head]
    pos = head
    for j, n in enumerate(lengths):
        part = stored[pos : pos + n]
        out[j : groups * width : width] = part if n == groups else _unzstd(part, groups)
        pos += n
    return bytes(out)


def decode_chunk(chunk: Chunk, stored: bytes) -> bytes:
    """The raw bytes of one stored chunk (codec 0, 1 or 2), checked against its hash."""
    if len(stored) != chunk.stored:
        raise SpecError("stored chunk of another length than its record says")
    view = memoryview(stored)
    if chunk.codec == 0:
        data = bytes(stored)
    elif chunk.codec == 1:
        data = _unzstd(view, chunk.raw)
    elif chunk.codec == 2:
        data = _ungroup(view, chunk.raw)
    else:
        raise SpecError(f"unknown codec {chunk.codec}")
    if len(data) != chunk.raw or hashlib.sha256(data).digest() != chunk.hash:
        raise SpecError(f"chunk {chunk.hash.hex()} does not match its hash")
    return data
