"""The file object the Python API returns: seekable, read-only, verified.

Owns: `ArtifactFile` over a byte source (an object in the local store, an object read
lazily from the remote, or a plain git blob), and the whole-object check: bytes served in
order from the start are hashed, and the read that reaches the end raises IntegrityError
instead of returning its bytes when the sha256 or size is not the pointer's.
Must not: decide where bytes come from (gitmlx.api does), run git, or print.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from typing import BinaryIO, Protocol

from gitmlx.errors import IntegrityError
from gitmlx.format.pointer import Pointer

_LINE_BLOCK = 64 * 1024


class Source(Protocol):
    size: int
    #: Bytes fetched from a remote so far (0 for a local file).
    wire_bytes: int

    def pieces(self, offset: int, length: int, sequential: bool = False) -> Iterator[memoryview]:
        """Bytes [offset, offset + length) clipped to `size`, in order."""

    def close(self) -> None: ...


class FileSource:
    """A local file (a store object, or a spooled git blob) of known size."""

    wire_bytes = 0

    def __init__(self, file: BinaryIO, size: int) -> None:
        self.file, self.size = file, size

    def pieces(self, offset: int, length: int, sequential: bool = False) -> Iterator[memoryview]:
        length = min(length, self.size - offset)
        if length <= 0:
            return
        self.file.seek(offset)
        data = self.file.read(length)
        if len(data) != length:
            raise IntegrityError(
                f"a local file is shorter than expected ({offset + len(data)} of {self.size} bytes)",
                "run 'git mlx fsck' to find and remove damaged objects",
            )
        yield memoryview(data)

    def close(self) -> None:
        self.file.close()


class ArtifactFile(io.BufferedIOBase, BinaryIO):
    """A read-only binary file over one revision of a tracked path.

    Besides the usual file methods: `name` (the path in the repository), `rev`, `pointer`
    (None for a path that is plain git content), `size`, `origin` ('store', 'remote' or
    'git') and `wire_bytes` (bytes downloaded so far).
    """

    mode = "rb"

    def __init__(self, source: Source, name: str, rev: str, pointer: Pointer | None, origin: str) -> None:
        super().__init__()
        self._source = source
        self._name = name
        self.rev = rev
        self.pointer = pointer
        self.origin = origin
        self.size = source.size
        self._pos = 0
        self._last_end: int | None = None
        self._lock = threading.Lock()
        self._hash = hashlib.sha256() if pointer is not None else None
        self._hashed = 0
        self._failed: IntegrityError | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._name

    # -- reading ----------------------------------------------------------------------

    def read(self, size: int | None = -1, /) -> bytes:
        with self._lock:
            self._check_open()
            if size is None or size < 0:
                size = self.size - self._pos
            return b"".join(self._read_at(self._pos, size))

    read1 = read

    def readinto(self, buffer, /) -> int:  # type: ignore[override]
        with self._lock:
            self._check_open()
            out = memoryview(buffer).cast("B")
            n = 0
            for piece in self._read_at(self._pos, len(out)):
                out[n : n + len(piece)] = piece
                n += len(piece)
            return n

    readinto1 = readinto

    def readline(self, size: int | None = -1, /) -> bytes:
        with self._lock:
            self._check_open()
            limit = self.size if size is None or size < 0 else size
            parts: list[bytes] = []
            got = 0
            while got < limit:
                block = b"".join(self._read_at(self._pos, min(_LINE_BLOCK, limit - got)))
                if not block:
                    break
                cut = block.find(b"\n")
                if cut >= 0:
                    parts.append(block[: cut + 1])
                    # Give back what follows the line; the next read still counts as sequential.
                    self._pos = self._last_end = self._pos - (len(block) - cut - 1)
                    break
                parts.append(block)
                got += len(block)
            return b"".join(parts)

    def _read_at(self, pos: int, size: int) -> list[memoryview]:
        """Serve [pos, pos + size) and move the position; the caller holds the lock."""
        if self._failed is not None:
            raise self._failed
        size = max(0, min(size, self.size - pos))
        sequential = self._last_end is not None and pos == self._last_end
        pieces = list(self._source.pieces(pos, size, sequential)) if size else []
        got = sum(len(p) for p in pieces)
        if got != size:
            raise IntegrityError(f"'{self.name}' at '{self.rev}': expected {size} bytes at {pos}, got {got}")
        self._advance_hash(pos, pieces)
        self._pos = self._last_end = pos + size
        return pieces

    def _advance_hash(self, pos: int, pieces: list[memoryview]) -> None:
        """Hash bytes served in order from the start; check the oid when the end is reached."""
        if self._hash is None or self.pointer is None:
            return
        for piece in pieces:
            end = pos + len(piece)
            if pos <= self._hashed < end:
                self._hash.update(piece[self._hashed - pos :])
                self._hashed = end
            pos = end
        if self._hashed == self.size and self._hash is not None:
            got, self._hash = self._hash.hexdigest(), None
            if got != self.pointer.oid:
                self._failed = IntegrityError(
                    f"'{self.name}' at '{self.rev}' (object {self.pointer.short_oid}, {self.size} bytes) "
                    f"failed verification: expected sha256 {self.pointer.oid}, got {got}",
                    "the copy it was read from is damaged: run 'git mlx fsck' (and 'git mlx fsck --remote')",
                )
                raise self._failed

    @property
    def verified(self) -> bool:
        """True once every byte was served in order and the whole object matched its oid."""
        return self.pointer is not None and self._hash is None and self._failed is None

    @property
    def wire_bytes(self) -> int:
        return self._source.wire_bytes

    # -- position ---------------------------------------------------------------------

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        with self._lock:
            self._check_open()
            base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}.get(whence)
            if base is None:
                raise ValueError(f"invalid whence {whence!r}")
            if base + offset < 0:
                raise ValueError(f"negative seek position {base + offset}")
            self._pos = base + offset
            return self._pos

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        if not self.closed:
            self._source.close()
        super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")

    def __repr__(self) -> str:
        return f"<gitmlx.ArtifactFile {self.name!r} rev={self.rev!r} size={self.size} origin={self.origin!r}>"
