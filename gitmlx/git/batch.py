"""Reading git objects through `git cat-file` in batch mode.

Owns: the header cat-file answers with (`<sha> <type> <size>`, followed for `--batch` by
the content and an LF), and BlobReader, which keeps cat-file open to answer blob by blob
and streams content of any size in blocks: a history rewrite asks once per file change
and cannot list the blobs up front. `small_blobs` reads a known list of small blobs in
one process run to completion (scan.py's pointers), streamed.
Must not: parse pointers, or know about the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitmlx.errors import MlxError
from gitmlx.git.plumbing import GitOutput, GitProcess

#: The `--batch-check` format whose answers parse_header reads.
HEADER_FORMAT = "%(objectname) %(objecttype) %(objectsize)"

#: Largest piece BlobReader.copy hands its sink: content never sits whole in memory.
COPY_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class ObjectHeader:
    """What cat-file says of an object that exists: its id, type and size in bytes."""

    sha: str
    kind: str
    size: int


def parse_header(line: bytes) -> ObjectHeader | None:
    """`<sha> <type> <size>` → its header; None for `<name> missing` or `<name> ambiguous`.

    Split from the right: a name that git could not resolve is echoed back as given, and
    a `REV:PATH` may hold spaces.
    """
    parts = line.rstrip(b"\n").rsplit(b" ", 2)
    if len(parts) != 3 or not parts[2].isdigit():
        return None
    return ObjectHeader(parts[0].decode("utf-8", "surrogateescape"), parts[1].decode(), int(parts[2]))


def small_blobs(cwd: Path, shas: Sequence[str]) -> Iterator[tuple[ObjectHeader, bytes]]:
    """(header, content) of each of `shas` that exists, in order, from one `cat-file
    --batch`: for small blobs (each is read whole; BlobReader streams any size).

    The output is read as it comes (100,000 pointers are ~18 MiB of it), and `--buffer`
    makes git write it in blocks, not with a flush per object (which costs more than the
    objects themselves when there are thousands of small ones).
    """
    if not shas:
        return
    with GitOutput(["cat-file", "--batch", "--buffer"], cwd, "\n".join(shas).encode() + b"\n") as out:
        while line := out.readline():
            header = parse_header(line)
            if header is None:  # "<sha> missing": no content follows
                continue
            yield header, out.read(header.size)
            out.read(1)  # the LF after the content


class BlobReader:
    """Blob sizes and contents, one blob at a time, from two `cat-file` processes kept open.

    close() ends both processes.
    """

    def __init__(self, cwd: Path) -> None:
        self._check = GitProcess(["cat-file", f"--batch-check={HEADER_FORMAT}"], cwd)
        try:
            self._cat = GitProcess(["cat-file", "--batch"], cwd)
        except BaseException:
            self._check.close()
            raise

    def close(self) -> None:
        self._cat.close()
        self._check.close()

    def size(self, sha: bytes) -> int:
        """The size in bytes of the object `sha` (a hex id)."""
        line = self._check.ask(sha + b"\n").readline()
        header = parse_header(line)
        if header is None:
            raise MlxError(f"cannot read blob {sha.decode()[:10]}: {line.decode(errors='replace').strip()}")
        return header.size

    def copy(self, sha: bytes, sink: Callable[[bytes], object]) -> int:
        """Stream the blob `sha` (a hex id) into `sink` in blocks; return its size."""
        out = self._cat.ask(sha + b"\n")
        line = out.readline()
        header = parse_header(line)
        if header is None or header.kind != "blob":
            raise MlxError(f"cannot read blob {sha.decode()[:10]}: {line.decode(errors='replace').strip()}")
        size = left = header.size
        while left:
            block = out.read(min(left, COPY_BLOCK))
            if not block:
                raise MlxError(f"git cat-file ended inside blob {sha.decode()[:10]}")
            sink(block)
            left -= len(block)
        out.read(1)  # the LF after the content
        return size
