"""Per-chunk compression: zstd where it pays, raw bytes where it does not.

Owns: the zstandard import (loaded on first use) and the rule for when a chunk is stored
compressed: only when zstd saves at least 1/16 of it. Model weights mostly stay raw;
text datasets shrink several-fold. zstd gives up quickly on incompressible input, so
trying every chunk is cheap (bench/README.md, "Design measurements").
Must not: do I/O.
"""

from __future__ import annotations

import threading

from gitmlx.errors import IntegrityError
from gitmlx.format.manifest import CODEC_RAW, CODEC_ZSTD

LEVEL = 1
_local = threading.local()


def _compressor():
    if not hasattr(_local, "compressor"):
        import zstandard

        _local.compressor = zstandard.ZstdCompressor(level=LEVEL)
        _local.decompressor = zstandard.ZstdDecompressor()
    return _local


def encode(chunk: bytes | memoryview) -> tuple[int, bytes | memoryview]:
    """(codec, stored bytes) for one raw chunk."""
    packed = _compressor().compressor.compress(chunk)
    if len(packed) <= len(chunk) - len(chunk) // 16:
        return CODEC_ZSTD, packed
    return CODEC_RAW, chunk


def decode(codec: int, stored: bytes | memoryview, raw: int) -> bytes | memoryview:
    """The raw chunk; IntegrityError when the stored bytes do not decode to `raw` bytes."""
    if codec == CODEC_RAW:
        return stored
    import zstandard

    try:
        data = _compressor().decompressor.decompress(bytes(stored), max_output_size=raw)
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"a compressed chunk is damaged ({exc})", "push the file again") from None
    if len(data) != raw:
        raise IntegrityError("a compressed chunk has the wrong length", "push the file again")
    return data


class Sampler:
    """Decides, per object, whether trying zstd is worth it.

    The first chunks are always tried; once `PROBE` of them in a row did not shrink,
    only every `EVERY`-th chunk is tried (a hit switches trying back on). Incompressible
    objects (most model weights) then skip ~98% of the compression attempts.
    """

    PROBE = 8
    EVERY = 64

    def __init__(self) -> None:
        self._misses = 0
        self._seen = 0

    def encode(self, chunk: bytes | memoryview) -> tuple[int, bytes | memoryview]:
        self._seen += 1
        if self._misses >= self.PROBE and self._seen % self.EVERY:
            return CODEC_RAW, chunk
        kind, stored = encode(chunk)
        self._misses = 0 if kind != CODEC_RAW else self._misses + 1
        return kind, stored
