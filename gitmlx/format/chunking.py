"""Content-defined chunking: where an object is cut into chunks.

Owns: pyfastcdc (the only importer) and the chunking parameters of remote format 1:
FastCDC 2020, normalised chunking level 1, seed 0, min 16 KiB, "avg" 64 KiB, max 256 KiB
(FastCDC's real mean is about avg + min).
Boundaries depend only on content, so an edit moves only the chunks around it and an
insertion does not shift every later boundary.
An object of 1 byte to MAX_SIZE is one chunk, never cut (`one_chunk`): its chunk hash is
then its oid, which the store verified when the object came in, so a push of many small
files neither runs the chunker nor hashes their bytes again. The cost: a small object
edited slightly shares no chunk with its previous version (a 200 KiB file is stored again
whole, where cutting might have shared half of it); at most 256 KiB per such file.
Must not: hash, store or upload. Boundaries only decide how much dedup a writer finds;
readers never re-chunk, so another implementation may cut differently and stay compatible.

Why pyfastcdc: it streams in bounded memory, where the `fastcdc` package reads the whole
input into memory, and it is faster (bench/README.md, "Design measurements").
"""

from __future__ import annotations

from collections.abc import Iterator

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from typing import BinaryIO

MIN_SIZE = 16 * 1024
AVG_SIZE = 64 * 1024
MAX_SIZE = 256 * 1024


def one_chunk(size: int) -> bool:
    """Whether an object of `size` bytes is stored as a single chunk of all its bytes (not
    cut; an empty object has no chunk)."""
    return 0 < size <= MAX_SIZE


def chunks(stream: BinaryIO) -> Iterator[memoryview]:
    """The chunks of `stream` in order, cut by content (callers apply `one_chunk` first).
    Each view is only valid until the next one."""
    from pyfastcdc import FastCDC

    cutter = FastCDC(AVG_SIZE, min_size=MIN_SIZE, max_size=MAX_SIZE, normalized_chunking=1, seed=0)
    for chunk in cutter.cut_stream(stream):
        yield chunk.data
