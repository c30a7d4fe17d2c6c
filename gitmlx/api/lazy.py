"""Lazy, verified reads of one object straight from the remote (remote format 1).

Owns: turning a byte range of an object into the chunks that cover it (the manifest's
raw lengths give each chunk's place in the object), coalescing the missing ones into
ranged reads of pack bytes, decoding and checking each chunk's sha256 against the
manifest before a byte of it is used, a small LRU cache of verified chunks, and an
adaptive read-ahead for sequential readers.
Must not: write the local store, print, or know which backend it talks to.

What a chunk check proves: the bytes are the chunk the manifest names. The manifest is
checked too (its checksum, the oid and size it claims, its lengths; manifest.decode), but
only a read of the whole object ties its chunk list to the pointer's oid, which is why
`reader.ArtifactFile` hashes sequential reads and checks the oid at the end. Accidental
damage anywhere is therefore caught on every read; a remote forged by someone with write
access could pass off a different object's chunks to a *ranged* read (docs/python-api.md).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gitmlx.errors import IntegrityError
from gitmlx.format import codec, layout
from gitmlx.format.manifest import ChunkRef, Manifest
from gitmlx.remotes.base import Remote

#: One ranged read covers at most this many stored bytes (it is held in memory while split).
RUN_LIMIT = 16 * 1024 * 1024
#: Verified raw chunks kept for the next reads.
CACHE_BYTES = 32 * 1024 * 1024
#: Largest read-ahead window of a sequential reader; it starts at READAHEAD_START and
#: doubles with each sequential read that has to go to the remote.
READAHEAD_MAX = 8 * 1024 * 1024
READAHEAD_START = 256 * 1024


@dataclass(frozen=True)
class Run:
    """One ranged read: `length` stored bytes at `offset` of `pack`, holding the chunks
    `first` up to (not including) `stop`, in object order."""

    pack: str
    offset: int
    length: int
    first: int
    stop: int


def chunk_starts(chunks: Sequence[ChunkRef]) -> list[int]:
    """Where each chunk starts in the object, plus the object's size at the end."""
    starts = [0]
    for chunk in chunks:
        starts.append(starts[-1] + chunk.raw)
    return starts


def covering(starts: Sequence[int], offset: int, length: int) -> range:
    """Indexes of the chunks holding bytes [offset, offset + length) of the object."""
    size = starts[-1]
    if length <= 0 or offset >= size:
        return range(0)
    end = min(offset + length, size)
    first = bisect_right(starts, offset) - 1
    stop = bisect_right(starts, end - 1)
    return range(first, stop)


def plan(chunks: Sequence[ChunkRef], indexes: Sequence[int], limit: int = RUN_LIMIT) -> list[Run]:
    """Ranged reads for the chunks at `indexes` (ascending): neighbours in the object that
    are also back to back in one pack share a read, up to `limit` stored bytes."""
    runs: list[Run] = []
    for i in indexes:
        chunk = chunks[i]
        if runs:
            last = runs[-1]
            if (
                last.stop == i
                and last.pack == chunk.pack
                and last.offset + last.length == chunk.offset
                and last.length + chunk.stored <= limit
            ):
                runs[-1] = Run(last.pack, last.offset, last.length + chunk.stored, last.first, i + 1)
                continue
        runs.append(Run(chunk.pack, chunk.offset, chunk.stored, i, i + 1))
    return runs


class _Collect:
    """A sink for one run: refuses more bytes than asked for (memory stays bounded)."""

    def __init__(self, expected: int) -> None:
        self.buf = bytearray()
        self.expected = expected

    def write(self, data: bytes | memoryview) -> None:
        if len(self.buf) + len(data) > self.expected:
            raise IntegrityError("the remote sent more bytes than asked for", "run the command again")
        self.buf += data


class ChunkCache:
    """Verified raw chunks by chunk hash, least recently used dropped past `limit` bytes."""

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self.limit = limit
        self.size = 0
        self._items: OrderedDict[bytes, bytes] = OrderedDict()

    def get(self, key: bytes) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: bytes, data: bytes) -> None:
        if key in self._items:
            self._items.move_to_end(key)
            return
        self._items[key] = data
        self.size += len(data)
        while self.size > self.limit and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self.size -= len(dropped)

    def __contains__(self, key: bytes) -> bool:
        return key in self._items


class RemoteSource:
    """Bytes of one object, fetched chunk by chunk from its packs on `remote`.

    `label` names the object in messages (path, revision, short oid).
    """

    def __init__(
        self,
        remote: Remote,
        manifest: Manifest,
        label: str,
        *,
        readahead: int = READAHEAD_MAX,
        cache_bytes: int = CACHE_BYTES,
        manifest_bytes: int = 0,
    ) -> None:
        self.remote, self.manifest, self.label = remote, manifest, label
        self.size = manifest.size
        self.starts = chunk_starts(manifest.chunks)
        self.cache = ChunkCache(max(cache_bytes, 2 * readahead))
        self.readahead = readahead
        self._window = 0
        #: Bytes received from the remote so far (the manifest's included).
        self.wire_bytes = manifest_bytes
        self.requests = 0

    def pieces(self, offset: int, length: int, sequential: bool = False) -> Iterator[memoryview]:
        """Verified bytes [offset, offset + length), clipped to the object, in order."""
        chunks = self.manifest.chunks
        wanted = covering(self.starts, offset, length)
        if not wanted:
            return
        end = min(offset + length, self.size)
        self._window = min(self.readahead, max(READAHEAD_START, 2 * self._window)) if sequential else 0
        # Chunks the caller needs but the cache lacks, fetched (and held) run by run in
        # object order, so a large read never holds more than its result plus one run.
        held: dict[int, bytes] = {}
        i = wanted.start
        while i < wanted.stop:
            data = held.pop(i, None)
            if data is None:
                data = self.cache.get(chunks[i].hash)
            if data is None:
                held = self._fetch_from(i, wanted.stop)
                data = held.pop(i)
            lo = max(offset - self.starts[i], 0)
            hi = min(end - self.starts[i], len(data))
            yield memoryview(data)[lo:hi]
            i += 1

    def _fetch_from(self, i: int, stop: int) -> dict[int, bytes]:
        """Fetch the missing chunks from `i` on: those up to the first cached one (at most
        one run's worth) and, past `stop`, a read-ahead window for sequential readers."""
        chunks = self.manifest.chunks
        indexes = []
        stored = 0
        j = i
        while j < len(chunks) and chunks[j].hash not in self.cache and stored < RUN_LIMIT:
            if j >= stop and self.starts[j] - self.starts[stop] >= self._window:
                break
            indexes.append(j)
            stored += chunks[j].stored
            j += 1
        got: dict[int, bytes] = {}
        for run in plan(chunks, indexes):
            got.update(self._read_run(run))
        for k, data in got.items():
            self.cache.put(chunks[k].hash, data)
        return {k: got[k] for k in got if k < stop}

    def _read_run(self, run: Run) -> dict[int, bytes]:
        sink = _Collect(run.length)
        self.remote.get(layout.pack_key(run.pack), sink, run.offset, None, run.length)
        self.requests += 1
        self.wire_bytes += len(sink.buf)
        if len(sink.buf) != run.length:
            raise IntegrityError(
                f"pack {run.pack[:10]} on remote '{self.remote.display_url}' ended early while reading {self.label}",
                "the remote copy is damaged: run 'git mlx fsck --remote', then push the file again",
            )
        out: dict[int, bytes] = {}
        view = memoryview(sink.buf)
        pos = 0
        for k in range(run.first, run.stop):
            chunk = self.manifest.chunks[k]
            stored = view[pos : pos + chunk.stored]
            pos += chunk.stored
            try:
                raw = bytes(codec.decode(chunk.codec, stored, chunk.raw))
            except IntegrityError as exc:
                raise self._damaged(k, exc.message) from None
            got = hashlib.sha256(raw).digest()
            if got != chunk.hash:
                raise self._damaged(k, f"expected sha256 {chunk.hash.hex()[:16]}…, got {got.hex()[:16]}…")
            out[k] = raw
        return out

    def _damaged(self, k: int, why: str) -> IntegrityError:
        chunk = self.manifest.chunks[k]
        return IntegrityError(
            f"chunk {k} (bytes {self.starts[k]}-{self.starts[k + 1] - 1}) of {self.label} from "
            f"remote '{self.remote.display_url}' failed verification ({why}; pack {chunk.pack[:10]})",
            "the remote copy is damaged: push the file again from a clone that has it",
        )

    def close(self) -> None:
        self.cache = ChunkCache(0)
