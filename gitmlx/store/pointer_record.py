"""The pointer record: which git blob holds which gitmlx pointer, as the clean filter wrote it.

Owns: `pointer-blobs` and `pointer-blobs.1` beside the local store (docs/local-store.md,
"Pointer record"): lines `<blob id> <oid> <size>` appended by the clean filter, read by a
push to learn the pointer in a blob without asking git to list its size and read it.
Must not: run git, or be trusted. Every line is checked before use: the pointer text is
rebuilt from oid and size and hashed as git hashes a blob, and a line whose hash is not
its blob id is ignored. So a damaged, torn, stale or hand-edited record can only make a
push ask git, as it does without a record; it can never name content the blob lacks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

from gitmlx.format.pointer import Pointer
from gitmlx.osutil import digests

FILE_NAME = "pointer-blobs"
#: The previous file, once FILE_NAME passed ROTATE_AT bytes (still read; replaced at the next turn).
OLD_NAME = "pointer-blobs.1"
#: Past this size the record starts over (the old file kept as OLD_NAME): ~60,000 lines
#: each, so at most 16 MiB on disk and what a push reads stays bounded.
ROTATE_AT = 8 * 1024 * 1024
#: Lines are written in batches of at most this many bytes, whole lines only: one
#: `write(2)` on a file opened with O_APPEND, which local file systems never interleave
#: with another process's (a torn or mixed line fails its check and is skipped).
WRITE_MAX = 4096
#: A lookup reads the record backwards in blocks of this many bytes.
READ_BLOCK = 256 * 1024
#: Blob id length (hex digits) -> the repository's object format.
_FORMATS = {40: "sha1", 64: "sha256"}


def blob_id(text: bytes, object_format: str) -> str:
    """The id git gives a blob holding `text`, in hex."""
    return digests.git_blob_id(text, object_format).hex()


class PointerRecordWriter:
    """Appends what one process's clean filter emitted; lines wait in memory until
    WRITE_MAX bytes are pending or `close`. Nothing here may fail a clean: an error
    writing the record drops it (the record is an optimisation, never needed)."""

    def __init__(self, store_root: Path, object_format: str) -> None:
        self._path = store_root / FILE_NAME
        self._format = object_format if object_format in _FORMATS.values() else None
        self._pending: list[bytes] = []
        self._size = 0

    def add(self, text: bytes, pointer: Pointer) -> None:
        """Record that the pointer text `text` (for `pointer`) goes into a git blob."""
        if self._format is None:
            return
        line = f"{blob_id(text, self._format)} {pointer.oid} {pointer.size}\n".encode()
        if self._size + len(line) > WRITE_MAX:
            self.flush()
        self._pending.append(line)
        self._size += len(line)

    def flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError:
            return
        try:
            os.write(fd, data)
            if os.fstat(fd).st_size > ROTATE_AT:
                # Another writer may rotate at the same moment: whichever rename comes
                # second moves a fresh file over the old one, losing lines, never mixing them.
                os.replace(self._path, self._path.with_name(OLD_NAME))
        except OSError:
            pass
        finally:
            os.close(fd)

    close = flush


def reader(store_root: Path) -> Callable[[Collection[str]], dict[str, Pointer]] | None:
    """`lookup` in this store's record; None when there is no record (a scan then lists
    blob sizes as it did before, rather than ask git for them separately)."""
    if not any(os.path.exists(store_root / name) for name in (FILE_NAME, OLD_NAME)):
        return None
    return lambda blobs: lookup(store_root, blobs)


def lookup(store_root: Path, blobs: Collection[str]) -> dict[str, Pointer]:
    """The pointers the record vouches for among the blob ids `blobs` (lowercase hex);
    blobs it does not know, or whose line fails its check, are left out.

    Reads newest line first and stops once every blob is found: a push asks for what was
    just added, which is at the end of the record, and reading the whole record cost a
    push ~35 ms at 12.8 MiB whatever it pushed. (Which of two lines for one blob wins
    does not matter: a line counts only if its pointer text hashes to the blob id.)"""
    found: dict[str, Pointer] = {}
    wanted = {blob.encode("ascii", "replace") for blob in blobs}
    for name in (FILE_NAME, OLD_NAME) if wanted else ():
        for lines in _blocks_newest_first(store_root / name):
            for line in reversed(lines):
                blob, _, rest = line.partition(b" ")
                if blob in wanted:
                    key = blob.decode("ascii")
                    pointer = _checked(key, rest)
                    if pointer is not None:
                        found[key] = pointer
                        wanted.discard(blob)
            if not wanted:
                return found
    return found


def _blocks_newest_first(path: Path) -> Iterator[list[bytes]]:
    """The lines of `path` (each with its newline, the last one perhaps without), in
    lists of about READ_BLOCK bytes read backwards: the last list first, each list in
    file order. Nothing when the file cannot be read."""
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return
    with stream:
        end = stream.seek(0, os.SEEK_END)
        carry = b""  # the end of a line that begins in an earlier block
        while end > 0:
            start = max(0, end - READ_BLOCK)
            stream.seek(start)
            block = stream.read(end - start) + carry
            end = start
            if start > 0:
                cut = block.find(b"\n") + 1  # the first line may begin in an earlier block
                carry, block = (block[:cut], block[cut:]) if cut else (block, b"")
            else:
                carry = b""
            yield block.splitlines(keepends=True)


def _checked(blob: str, rest: bytes) -> Pointer | None:
    """The pointer of a line's `<oid> <size>\\n` when its text hashes to `blob`."""
    fields = rest.split()
    object_format = _FORMATS.get(len(blob))
    if len(fields) != 2 or object_format is None or not rest.endswith(b"\n"):
        return None
    try:
        pointer = Pointer(fields[0].decode("ascii"), int(fields[1]))
    except (ValueError, UnicodeDecodeError):
        return None
    if fields[1] != str(pointer.size).encode():
        return None  # "+5", "05", "5_0": int() takes them, the format does not
    return pointer if blob_id(pointer.encode(), object_format) == blob else None
