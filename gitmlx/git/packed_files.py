"""A push's list of files, held compactly.

Owns: `PackedFiles`, the sequence of TrackedFile a push holds for every file it uploads
(a first push of 100,000 files holds them all until its upload ends).
Must not: run git or read files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from gitmlx.format.pointer import Pointer
from gitmlx.git.scan import TrackedFile


class PackedFiles(Sequence[TrackedFile]):
    """TrackedFiles kept as their pointers, their paths joined by NULs a block at a time,
    and a byte per mode: what a push holds for every file it uploads (a path only names
    a file in an error), ~120 bytes per file less than a list of TrackedFile. A
    TrackedFile is made again when asked for."""

    BLOCK = 1024

    def __init__(self) -> None:
        self.pointers: list[Pointer] = []
        self._modes = bytearray()
        self._mode_names: list[str] = []
        self._blocks: list[str] = []
        self._pending: list[str] = []

    def extend(self, files: Iterable[TrackedFile]) -> None:
        for f in files:
            if f.mode not in self._mode_names:
                self._mode_names.append(f.mode)
            self.pointers.append(f.pointer)
            self._modes.append(self._mode_names.index(f.mode))
            self._pending.append(f.path)  # git paths hold no NUL
            if len(self._pending) == self.BLOCK:
                self._blocks.append("\0".join(self._pending))
                self._pending = []

    def _paths(self, block: int) -> list[str]:
        return self._blocks[block].split("\0") if block < len(self._blocks) else self._pending

    def _file(self, i: int, path: str) -> TrackedFile:
        return TrackedFile(path, self.pointers[i], self._mode_names[self._modes[i]])

    def __len__(self) -> int:
        return len(self.pointers)

    def __getitem__(self, i: int) -> TrackedFile:  # type: ignore[override] - no slices
        if i < 0:
            i += len(self.pointers)
        if not 0 <= i < len(self.pointers):
            raise IndexError(i)
        return self._file(i, self._paths(i // self.BLOCK)[i % self.BLOCK])

    def __iter__(self) -> Iterator[TrackedFile]:
        for block in range(len(self._blocks) + 1):
            base = block * self.BLOCK
            for k, path in enumerate(self._paths(block)):
                yield self._file(base + k, path)
