"""Test content: pseudo-random files, their hashes, and in-memory streams to read from and
write into.

Owns: writing seeded pseudo-random files (streamed, so a test can make files of gigabytes),
the sha256 / git blob id of bytes and files, and the `Source` / `Sink` stand-ins for the
streams gitmlx reads from and writes to.
Must not: import gitmlx, or keep a large file's bytes in memory.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import struct
from pathlib import Path

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
BLOCK = MIB  # what the writers and hashers here hold in memory at once


def write_random(path: Path, size: int, seed: int | str) -> str:
    """Write `size` pseudo-random bytes (streamed, never all in memory); return their sha256.
    The same seed gives the same bytes; no two blocks of one file are alike."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(str(seed))
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = rng.randbytes(min(left, BLOCK))
            digest.update(block)
            f.write(block)
            left -= len(block)
    return digest.hexdigest()


def write_artifacts(repo: Path, sizes: dict[str, int], seed: str = "") -> dict[str, str]:
    """Write one pseudo-random file per path (seeded by `seed` + the path); returns path -> sha256."""
    return {path: write_random(repo / path, size, f"{seed}{path}") for path, size in sizes.items()}


def sha(data: bytes) -> str:
    """The oid of `data`: its sha256, lower-case hex."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def git_blob_hash(path: Path) -> str:
    """The id git would give the file's raw bytes as a blob (sha1 of 'blob N\\0' + bytes)."""
    digest = hashlib.sha1()
    digest.update(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def files_under(path: Path) -> list[Path]:
    """Every file below `path`, sorted; [] when it does not exist."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


class Source:
    """A content source that returns at most `step` bytes per read and records exhaustion."""

    def __init__(self, data: bytes, step: int = 1 << 30) -> None:
        self._stream = io.BytesIO(data)
        self._step = step

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(self._step if n < 0 else min(n, self._step))

    @property
    def exhausted(self) -> bool:
        return self._stream.tell() == len(self._stream.getbuffer())


class Sink:
    """A sink that keeps a copy of each write (`parts`; `data` joins them): the writer may
    reuse its buffer once `write` returns."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes | memoryview) -> int:
        self.parts.append(bytes(data))
        return len(data)

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)


def float_bytes(count: int, seed: int | str, kind: str = "f") -> bytes:
    """`count` little-endian floats of a normal distribution, like model weights: `kind`
    "e" fp16, "f" fp32, "d" fp64 (struct codes), or "bf16" (fp32's top two bytes)."""
    rng = random.Random(str(seed))
    values = [rng.gauss(0.0, 0.05) for _ in range(count)]
    if kind == "bf16":
        wide = struct.pack(f"<{count}f", *values)
        return b"".join(wide[i + 2 : i + 4] for i in range(0, len(wide), 4))
    return struct.pack(f"<{count}{kind}", *values)


def write_safetensors(path: Path, tensors: dict[str, bytes], repeat: int = 1) -> None:
    """A safetensors file of U8 tensors `{name: bytes}`, each tensor's bytes written
    `repeat` times (so a file of gigabytes needs only a few distinct megabytes, which
    chunk dedup then stores once)."""
    header: dict[str, object] = {}
    offset = 0
    for name, data in tensors.items():
        size = len(data) * repeat
        header[name] = {"dtype": "U8", "shape": [size], "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as f:
        f.write(len(raw).to_bytes(8, "little") + raw)
        for data in tensors.values():
            for _ in range(repeat):
                f.write(data)
