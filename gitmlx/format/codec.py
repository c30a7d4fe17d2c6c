"""Per-chunk compression: zstd where it pays, byte planes for float data, raw bytes where
neither does.

Owns: the zstandard import (loaded on first use), the stored form of codec 2 (byte-grouped
zstd, docs/storage-format.md, "Byte-grouped chunks"), and the rule for when a chunk is
stored compressed: only when that saves at least 1/16 of it. Model weights barely shrink
as a byte stream, but the byte of each float that holds its sign and exponent does, once
it is split out into a plane of its own; text datasets shrink several-fold either way.
zstd gives up quickly on incompressible input, so trying every chunk is cheap
(bench/README.md, "Design measurements"); a chunk that is a whole small object is only
tried in full when a sample of its start shrinks (`lone_width`).
Must not: do I/O, or decide which remotes may hold codec 2 (a format 1 remote's readers
refuse it: the caller asks for byte grouping only where the remote's format allows it).
"""

from __future__ import annotations

import struct
import sys
import threading
from collections.abc import Callable

from gitmlx.errors import IntegrityError
from gitmlx.format.manifest import CODEC_GROUPED, CODEC_RAW, CODEC_ZSTD

LEVEL = 1
#: Element widths codec 2 splits by: 2-byte (fp16, bf16), 4-byte (fp32) and 8-byte (fp64) data.
WIDTHS = (2, 4, 8)
#: How much of a chunk the width probe compresses (per candidate): enough to pick the
#: right width for every chunk of the MiniLM model and of fp16, bf16, fp32 and fp64 tests.
PROBE_BYTES = 4 * 1024
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_local = threading.local()


def _compressor():
    if not hasattr(_local, "compressor"):
        import zstandard

        _local.compressor = zstandard.ZstdCompressor(level=LEVEL)
        _local.decompressor = zstandard.ZstdDecompressor()
    return _local


def _saves(stored: int, raw: int) -> bool:
    """Whether storing `stored` bytes for a raw chunk of `raw` saves at least 1/16 of it."""
    return stored <= raw - raw // 16


def encode(chunk: bytes | memoryview, width: int = 0) -> tuple[int, bytes | memoryview]:
    """(codec, stored bytes) for one raw chunk: zstd of the whole chunk (`width` 0) or of
    its byte planes (`width` 2, 4 or 8), or the chunk itself when that does not pay."""
    if width:
        stored = group(chunk, width)
        if stored is not None and _saves(len(stored), len(chunk)):
            return CODEC_GROUPED, stored
        return CODEC_RAW, chunk
    packed = _compressor().compressor.compress(chunk)
    if _saves(len(packed), len(chunk)):
        return CODEC_ZSTD, packed
    return CODEC_RAW, chunk


def width_of(kind: int, stored: bytes | memoryview) -> int:
    """The `width` argument of `encode` that gives `kind` and `stored` again."""
    return stored[0] if kind == CODEC_GROUPED else 0


def group(chunk: bytes | memoryview, width: int) -> bytes | None:
    """Codec 2's stored form of `chunk`, or None when it has no whole element.

    Plane j holds bytes j, j + width, j + 2 × width, … of the chunk: where the elements
    really start does not matter, since a shift only changes which plane holds which byte
    of the element (docs/storage-format.md, "Byte-grouped chunks"). A plane is kept as a
    zstd frame only when the frame is shorter than it.
    """
    data = chunk if isinstance(chunk, bytes) else bytes(chunk)
    count = len(data) // width
    if count == 0:
        return None
    body = count * width
    compress = _compressor().compressor.compress
    planes = []
    for j in range(width):
        plane = data[j:body:width]
        frame = compress(plane)
        planes.append(frame if len(frame) < count else plane)
    lengths = struct.pack(f"<{width}I", *(len(p) for p in planes))
    return b"".join([bytes((width,)), lengths, data[body:], *planes])


def decode(codec: int, stored: bytes | memoryview, raw: int) -> bytes | bytearray | memoryview:
    """The raw chunk; IntegrityError when the stored bytes do not decode to `raw` bytes."""
    if codec == CODEC_RAW:
        return stored
    if codec == CODEC_GROUPED:
        return _ungroup(memoryview(stored), raw)
    return _unzstd(stored, raw, strict=False)


def _damaged(why: str) -> IntegrityError:
    return IntegrityError(f"a compressed chunk is damaged ({why})", "push the file again")


def _unzstd(frame: bytes | memoryview, size: int, strict: bool) -> bytes:
    """One zstd frame's `size` bytes. The frame header is read first: python-zstandard
    allocates what a frame declares as its content size, whatever the output limit, so a
    declared size other than `size` is refused before anything is allocated. `strict`:
    nothing may follow the frame (codec 2's planes; codec 1 tolerates trailing bytes)."""
    import zstandard

    try:
        params = zstandard.get_frame_parameters(frame)
        if params.content_size not in (size, zstandard.CONTENTSIZE_UNKNOWN):
            raise _damaged(f"its frame declares {params.content_size} bytes, not {size}")
        if params.dict_id:
            raise _damaged("its frame needs a dictionary")
        data = _compressor().decompressor.decompress(frame, max_output_size=size, allow_extra_data=not strict)
    except zstandard.ZstdError as exc:
        raise _damaged(str(exc)) from None
    if len(data) != size:
        raise IntegrityError("a compressed chunk has the wrong length", "push the file again")
    return data


def _ungroup(view: memoryview, raw: int) -> bytearray:
    """Rebuild a codec 2 chunk of `raw` bytes, checking every rule of its stored form; at
    most `raw` bytes are allocated for the output plus one plane at a time."""
    width = view[0] if len(view) else 0
    if width not in WIDTHS:
        raise _damaged(f"byte-plane width {width}")
    count, tail = divmod(raw, width)
    head = 1 + 4 * width
    if count == 0 or len(view) < head + tail:
        raise _damaged("shorter than its header")
    lengths = struct.unpack_from(f"<{width}I", view, 1)
    if any(not 0 < n <= count for n in lengths) or head + tail + sum(lengths) != len(view):
        raise _damaged("its byte-plane lengths do not add up")
    body = count * width
    out = bytearray(raw)
    out[body:] = view[head : head + tail]
    put = _plane_writer(out, width, count)
    pos = head + tail
    for j, n in enumerate(lengths):
        part = view[pos : pos + n]
        pos += n
        if n < count:
            if part[:4] != _ZSTD_MAGIC:
                raise _damaged(f"byte plane {j} is not a zstd frame")
            part = _unzstd(part, count, strict=True)
        put(j, part)
    return out


def _plane_writer(out: bytearray, width: int, count: int) -> Callable[[int, bytes | memoryview], None]:
    """put(j, plane): write plane j into every `width`-th byte of `out` from byte j.

    CPython's extended-slice assignment is a byte loop in C (over 1 GB/s of output with
    zstd included); numpy's strided copy makes it ~15% faster, so it is used when the process
    has imported numpy already (the Python API reading tensors), never imported for this:
    its import would cost a git-mlx process more time and memory than it saves
    (bench/README.md, "Byte-grouped chunks").
    """
    body = count * width
    np = sys.modules.get("numpy")
    if np is None:

        def put(j: int, plane: bytes | memoryview) -> None:
            out[j:body:width] = plane

        return put
    columns = np.frombuffer(out, dtype=np.uint8, count=body).reshape(count, width)

    def put_np(j: int, plane: bytes | memoryview) -> None:
        columns[:, j] = np.frombuffer(plane, dtype=np.uint8)

    return put_np


def choose_width(chunk: bytes | memoryview) -> int:
    """The `encode` width that stores a sample of `chunk` smallest: 0 (zstd of the bytes as
    they are) or a byte-plane width. The sample (PROBE_BYTES) is cheap next to compressing
    the whole chunk, and a chunk's start says what the rest of it is. A sample zstd cannot
    shrink by 1/64 is not tried in planes: floats always give zstd that much (their
    exponent bytes skew the byte histogram), random or compressed bytes never do, and
    those are the chunks where three more attempts would be wasted.
    """
    probed = _probe(chunk)
    return 0 if probed is None else _best_width(*probed)


def lone_width(chunk: bytes | memoryview, grouped: bool) -> int | None:
    """How to encode a chunk tried on its own (a one-chunk object, no Sampler to learn from):
    None when its first PROBE_BYTES do not shrink by 1/64 under zstd (the chunk is then
    stored raw without a full attempt: random or already compressed bytes, most of a push
    of many small files), else `encode`'s width (`choose_width` when `grouped`, else 0).
    A chunk no longer than the sample is tried whole: the sample would be all of it.
    """
    if len(chunk) <= PROBE_BYTES:
        return choose_width(chunk) if grouped else 0
    probed = _probe(chunk)
    if probed is None:
        return None
    return _best_width(*probed) if grouped else 0


def _probe(chunk: bytes | memoryview) -> tuple[bytes, int] | None:
    """(sample, its zstd size) of `chunk`'s start, or None when zstd saves less than 1/64 of it."""
    sample = bytes(chunk[:PROBE_BYTES])
    smallest = len(_compressor().compressor.compress(sample))
    if smallest > len(sample) - len(sample) // 64:
        return None
    return sample, smallest


def _best_width(sample: bytes, smallest: int) -> int:
    """The width storing `sample` smallest, given its plain zstd size `smallest` (0: plain)."""
    compress = _compressor().compressor.compress
    best = 0
    for width in WIDTHS:
        body = len(sample) // width * width
        if body == 0:
            break
        size = sum(min(len(compress(sample[j:body:width])), body // width) for j in range(width))
        if size < smallest:
            best, smallest = width, size
    return best


class Sampler:
    """Decides, per object, whether trying compression is worth it, and how.

    The first chunks are always tried; once `PROBE` of them in a row did not shrink,
    only every `EVERY`-th chunk is tried (a hit switches trying back on). Incompressible
    objects (most model weights without byte grouping) then skip ~98% of the compression
    attempts. With `grouped`, the width (`choose_width`) is chosen on each of the first
    `PROBE` chunks (the first often holds a file header), after a chunk that did not
    shrink, and every `EVERY`-th chunk: a tensor file's dtype changes between tensors,
    rarely within a few MiB.
    """

    PROBE = 8
    EVERY = 64

    def __init__(self, grouped: bool = False) -> None:
        self._grouped = grouped
        self._width = 0
        self._misses = 0
        self._seen = 0

    def encode(self, chunk: bytes | memoryview) -> tuple[int, bytes | memoryview]:
        self._seen += 1
        if self._misses >= self.PROBE and self._seen % self.EVERY:
            return CODEC_RAW, chunk
        if self._grouped and (self._seen <= self.PROBE or self._misses or self._seen % self.EVERY == 1):
            self._width = choose_width(chunk)
        kind, stored = encode(chunk, self._width)
        self._misses = 0 if kind != CODEC_RAW else self._misses + 1
        return kind, stored
