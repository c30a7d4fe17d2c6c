"""The chunks of an object with their sha256, for packing (packer.py).

Owns: cutting a stream into chunks (format/chunking) and hashing each, on one thread for
an ordinary object, or with a second thread hashing while the next batch is cut for a very
large one.
Must not: look chunks up, compress, or write them anywhere.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

from gitmlx.format import chunking

#: A worker thread hashes one batch of chunks while the next is cut.
HASH_BATCH = 4 * 1024 * 1024


def plain_digests(stream: BinaryIO) -> Iterator[tuple[bytes, memoryview]]:
    """(sha256, view) of each chunk of `stream`, in order, closing it at the end; each view
    is valid until the next."""
    with stream:
        for view in chunking.chunks(stream):
            yield hashlib.sha256(view).digest(), view


def digested_chunks(stream: BinaryIO) -> Iterator[tuple[bytes, bytes]]:
    """(sha256, bytes) of each chunk of `stream`, in order, closing it at the end.

    A worker thread hashes a batch of chunks while the next batch is cut (hashlib and the
    chunker release the GIL), so one large object keeps two cores busy; at most three
    batches (12 MiB) are held at once.
    """

    def digests(batch: list[bytes]) -> list[bytes]:
        return [hashlib.sha256(chunk).digest() for chunk in batch]

    with stream, ThreadPoolExecutor(max_workers=1, thread_name_prefix="gitmlx-hash") as pool:
        pending: deque[tuple[list[bytes], Future[list[bytes]]]] = deque()
        batch: list[bytes] = []
        size = 0
        for view in chunking.chunks(stream):
            batch.append(bytes(view))
            size += len(view)
            if size >= HASH_BATCH:
                pending.append((batch, pool.submit(digests, batch)))
                batch, size = [], 0
                while len(pending) > 2:
                    done, future = pending.popleft()
                    yield from zip(future.result(), done, strict=True)
        if batch:
            pending.append((batch, pool.submit(digests, batch)))
        while pending:
            done, future = pending.popleft()
            yield from zip(future.result(), done, strict=True)
