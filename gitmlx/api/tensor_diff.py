"""Which tensors changed between two versions of a safetensors or `.npy` artifact, when
at least one version's content is not local: from the headers (ranged reads) and the
manifests, without downloading the checkpoints.

A tensor is a byte range of its file. Where both sides come from the remote, each side's
manifest splits the range into chunks with known sha256s: a chunk that sits at the same
place in the tensor on both sides with the same hash proves those bytes equal, so nothing
is fetched for them. Where one side is local, its bytes are hashed against the other
side's chunk hashes instead. Only what no hash proves (a chunk shared with a neighbouring
tensor that changed, or a tensor that did change) is fetched, a chunk at a time in file
order, and the comparison of a tensor stops at its first differing chunk. So a diff costs
the manifests (53 bytes per chunk), the headers, and a few chunks per changed tensor.

Owns: that comparison and the lines the external diff driver leads with for it.
Must not: print, write the local store, or fetch a whole object.
"""

from __future__ import annotations

import hashlib
import os
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gitmlx.api.lazy import RemoteSource
from gitmlx.api.reader import ArtifactFile, FileSource, Source
from gitmlx.diffs.sides import Side
from gitmlx.format.manifest import ChunkRef
from gitmlx.format.sizes import human_size

BLOCK = 1024 * 1024


@dataclass(frozen=True)
class Item:
    """One tensor (or a `.npy` file's one array): what it is, and where its bytes are."""

    name: str
    form: str  # dtype and shape as shown, e.g. "F32 [64, 64]"
    start: int  # absolute offset in the file
    length: int


class Bytes:
    """One side's bytes: a source to read from and, when they come from a manifest, where
    its chunks start (`starts`, with the size at the end) and their sha256s (`chunks`).

    The manifest's own table is used as it is: a ChunkRef is made only for a chunk looked
    at, so a checkpoint of a million chunks costs its list of offsets, not a million objects.
    """

    def __init__(self, source: Source, starts: Sequence[int] = (), chunks: Sequence[ChunkRef] = ()) -> None:
        self.source = source
        self.size = source.size
        self.starts = starts
        self.chunks = chunks

    @property
    def chunked(self) -> bool:
        return bool(self.starts)

    def read(self, offset: int, length: int) -> bytes:
        return b"".join(self.source.pieces(offset, length))

    def sha256(self, offset: int, length: int) -> bytes:
        digest = hashlib.sha256()
        for at in range(offset, offset + length, BLOCK):
            digest.update(self.read(at, min(BLOCK, offset + length - at)))
        return digest.digest()

    def chunk_at(self, start: int) -> tuple[int, bytes] | None:
        """(end, sha256) of the chunk that starts at `start`, if one does."""
        i = bisect_left(self.starts, start)
        if i < len(self.chunks) and self.starts[i] == start:
            return self.starts[i + 1], self.chunks[i].hash
        return None

    def overlapping(self, lo: int, hi: int) -> Iterator[tuple[int, int, bytes]]:
        """(start, end, sha256) of each chunk holding bytes of [lo, hi)."""
        i = max(bisect_right(self.starts, lo) - 1, 0)
        while i < len(self.chunks) and self.starts[i] < hi:
            yield self.starts[i], self.starts[i + 1], self.chunks[i].hash
            i += 1


def lines(path: str, old: Side, new: Side) -> list[str]:
    """The lines leading the diff of `path`: counts, then one line per tensor that changed."""
    from gitmlx.context import RepoContext

    ctx = RepoContext()
    remote = None
    sides: list[Bytes | None] = []
    fetched = 0
    try:
        for side in (old, new):
            if side.missing:
                sides.append(None)
            elif side.content is not None:
                local = FileSource(open(side.content, "rb"), os.path.getsize(side.content))  # noqa: SIM115
                sides.append(Bytes(local))
            else:
                from gitmlx.transfer.rebuild import fetch_manifest

                assert side.pointer is not None
                remote = remote or ctx.open_remote()
                manifest, manifest_bytes = fetch_manifest(remote, side.pointer)
                label = f"'{path}' (object {side.pointer.short_oid})"
                source = RemoteSource(remote, manifest, label, readahead=0, manifest_bytes=manifest_bytes)
                sides.append(Bytes(source, source.starts, manifest.chunks))
        kind = old.kind if not old.missing else new.kind
        items = [_items(s, kind, path) if s is not None else {} for s in sides]
        out = _compare(items[0], items[1], sides[0], sides[1])
        fetched = sum(s.source.wire_bytes for s in sides if s is not None)
    finally:
        for s in sides:
            if s is not None:
                s.source.close()
    noun = "tensors" if kind == "safetensors" else "arrays"
    counts, changes = out
    head = (
        f"{noun}: {len(items[0])} \u2192 {len(items[1])} (+{counts[0]} \u2212{counts[1]} ~{counts[2]} changed;"
        f" compared by chunk hashes, {human_size(fetched)} fetched)"
    )
    return [head, *changes]


def _items(side: Bytes, kind: str, path: str) -> dict[str, Item]:
    """The tensors of one side, from its header (a ranged read when it is remote)."""
    f = ArtifactFile(_Unowned(side.source), path, "", None, "diff")
    if kind == "npy":
        from gitmlx.diffs import numpy_files

        header = numpy_files.read_header(f)
        start = f.tell()
        return {path: Item(path, header.describe().replace("  ", " "), start, side.size - start)}
    from gitmlx.diffs import safetensors

    parsed = safetensors.read_header(f, side.size)
    items = {}
    for t in parsed.tensors:
        form = f"{t.dtype} [" + ", ".join(str(d) for d in t.shape) + "]"
        items[t.name] = Item(t.name, form, parsed.data_start + t.begin, t.end - t.begin)
    return items


class _Unowned:
    """A source an ArtifactFile may read and close without closing the source itself."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self.size = source.size
        self.wire_bytes = 0

    def pieces(self, offset: int, length: int, sequential: bool = False) -> Iterator[memoryview]:
        return self._source.pieces(offset, length)

    def close(self) -> None:
        pass


def _compare(
    old: dict[str, Item], new: dict[str, Item], a: Bytes | None, b: Bytes | None
) -> tuple[tuple[int, int, int], list[str]]:
    """(added, removed, changed) and a line per tensor added, removed or changed, by name."""
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    changed = []
    for name in sorted(n for n in old if n in new):
        x, y = old[name], new[name]
        assert a is not None and b is not None
        if x.form != y.form:
            changed.append(f"changed {name}  {x.form} \u2192 {y.form}")
        elif x.length != y.length or not _equal(a, x.start, b, y.start, x.length):
            changed.append(f"changed {name}  {y.form}")
    out = [f"added {n}  {new[n].form}" for n in sorted(added)]
    out += [f"removed {n}  {old[n].form}" for n in sorted(removed)]
    return (len(added), len(removed), len(changed)), out + changed


def _equal(a: Bytes, a0: int, b: Bytes, b0: int, length: int) -> bool:
    """Whether bytes [a0, a0+length) of `a` equal [b0, b0+length) of `b`, fetching only
    what the chunk hashes cannot prove."""
    if not a.chunked and not b.chunked:
        return a.sha256(a0, length) == b.sha256(b0, length)
    if not a.chunked:
        a, a0, b, b0 = b, b0, a, a0
    unproven: list[tuple[int, int]] = []
    for start, end, digest in a.overlapping(a0, a0 + length):
        lo, hi = start - a0, end - a0  # the chunk's place relative to the tensor
        other = b0 + lo
        if b.chunked:
            proven = b.chunk_at(other) == (b0 + hi, digest)
        else:
            proven = other >= 0 and b0 + hi <= b.size and b.sha256(other, hi - lo) == digest
        if not proven:
            unproven.append((max(lo, 0), min(hi, length)))
    return all(a.read(a0 + lo, hi - lo) == b.read(b0 + lo, hi - lo) for lo, hi in unproven)
