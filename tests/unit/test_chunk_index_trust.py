"""The chunk index admits only proven chunks: a fetched manifest that rebuilds its object
correctly but lies about its chunks' hashes must not teach the client anything.

A remote row is what a later push trusts to name a chunk without uploading it, so a lie
there would store one file's bytes in place of another's (the chunk-index poisoning of
docs/threat-model.md). Each row is checked here against the bytes it points at, read
straight from the pack or the stored object, not through the index's own code.
"""

from __future__ import annotations

import hashlib
import io
import random
import sqlite3
from pathlib import Path

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitmlx.format import layout
from gitmlx.format.manifest import CODEC_RAW, ChunkRef, Manifest, decode
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.chunk_index import ChunkIndex
from gitmlx.store.objects import Store
from gitmlx.transfer.download import download
from gitmlx.transfer.upload import upload
from tests.support.remote_layout import new_process, read_manifest_bytes, write_manifest_bytes


def _content(rng: random.Random, size: int) -> bytes:
    """Random bytes with compressible runs, so some chunks are stored compressed."""
    parts = []
    while size > 0:
        n = min(size, rng.randrange(1, 96 * 1024))
        parts.append(bytes(n) if rng.random() < 0.3 else rng.randbytes(n))
        size -= n
    return b"".join(parts)


def _rows(store: Store) -> tuple[list[tuple], list[tuple]]:
    db = sqlite3.connect(store.root / "index.sqlite")
    try:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'remote_chunks'").fetchone():
            return [], []  # nothing was ever recorded
        remote = db.execute("SELECT remote, hash, pack, offset, stored, raw, codec FROM remote_chunks").fetchall()
        local = db.execute("SELECT hash, oid, offset, raw FROM local_chunks").fetchall()
    finally:
        db.close()
    return remote, local


def _assert_every_row_proven(store: Store, remote: LocalRemote) -> None:
    remote_rows, local_rows = _rows(store)
    for _name, digest, pack, offset, stored, raw, codec in remote_rows:
        with open(remote.root / layout.pack_key(pack), "rb") as f:
            f.seek(offset)
            data = f.read(stored)
        if codec != CODEC_RAW:
            data = zstandard.ZstdDecompressor().decompress(data, max_output_size=raw)
        assert hashlib.sha256(data).digest() == digest, f"remote row {digest.hex()[:10]} names other bytes"
    for digest, oid, offset, raw in local_rows:
        with store.open(oid) as f:
            f.seek(offset)
            data = f.read(raw)
        assert hashlib.sha256(data).digest() == digest, f"local row {digest.hex()[:10]} names other bytes"


def _lie(manifest: Manifest, rng: random.Random, claims: list[bytes]) -> Manifest:
    """The same manifest with some chunk hashes replaced: by random bytes, or by the hash
    of another real chunk (the lie that poisons: content a victim may push later)."""
    chunks = list(manifest.chunks)
    for i, c in enumerate(chunks):
        if rng.random() < 0.5:
            claim = rng.choice(claims) if claims and rng.random() < 0.7 else rng.randbytes(32)
            chunks[i] = ChunkRef(claim, c.pack, c.offset, c.stored, c.raw, c.codec)
    return Manifest(manifest.oid, manifest.size, tuple(chunks))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.integers(1, 600 * 1024), min_size=1, max_size=5))
def test_lying_chunk_records_never_enter_the_chunk_index(tmp_path_factory, seed: int, sizes: list[int]) -> None:
    tmp = tmp_path_factory.mktemp("poison")
    rng = random.Random(seed)
    source = Store(tmp / "source")
    contents = [_content(rng, size) for size in sizes]
    pointers = [source.insert_stream(io.BytesIO(c)) for c in contents]
    source.sync()
    remote = LocalRemote(tmp / "remote")
    assert upload(source, remote, pointers).ok
    # Hashes of real content a victim might push later: every chunk of every object.
    claims = [c.hash for p in pointers for c in decode(read_manifest_bytes(remote.root, p.oid), p).chunks]
    for p in pointers:
        write_manifest_bytes(
            remote.root, p.oid, _lie(decode(read_manifest_bytes(remote.root, p.oid), p), rng, claims).encode()
        )
    new_process()

    victim = Store(tmp / "victim")
    if rng.random() < 0.5:  # sometimes a local copy of one object, so rebuilds take local chunks
        victim.insert_stream(io.BytesIO(contents[0]))
        ChunkIndex(victim.root / "index.sqlite").close()
    result = download(victim, remote, pointers)
    assert result.ok, result.failed  # every object still rebuilds: its own hash is proven
    for p, c in zip(pointers, contents, strict=True):
        with victim.open(p.oid) as f:
            assert f.read() == c
    _assert_every_row_proven(victim, remote)


def test_honest_manifests_still_teach_the_index(tmp_path: Path) -> None:
    """The proof costs nothing in dedup: an honest fetch records every chunk, so a push of
    the same content from the victim uploads no chunk again."""
    source = Store(tmp_path / "source")
    data = _content(random.Random(7), 900 * 1024)
    pointer = source.insert_stream(io.BytesIO(data))
    source.sync()
    remote = LocalRemote(tmp_path / "remote")
    assert upload(source, remote, [pointer]).ok
    hashes = {c.hash for c in decode(read_manifest_bytes(remote.root, pointer.oid), pointer).chunks}

    victim = Store(tmp_path / "victim")
    assert download(victim, remote, [pointer]).ok
    remote_rows, local_rows = _rows(victim)
    assert {r[1] for r in remote_rows} == hashes == {r[0] for r in local_rows}
    _assert_every_row_proven(victim, remote)
    # The victim adds the same bytes under another object (one more byte): its push names
    # the known chunks instead of uploading them.
    other = victim.insert_stream(io.BytesIO(data + b"!"))
    packs_before = set((remote.root / "packs").rglob("*.pack"))
    assert upload(victim, remote, [other]).ok
    new_bytes = sum(p.stat().st_size for p in set((remote.root / "packs").rglob("*.pack")) - packs_before)
    assert new_bytes < 300 * 1024, f"{new_bytes} bytes uploaded again"


def test_rows_from_an_index_written_before_the_proof_are_dropped(tmp_path: Path) -> None:
    """An index from an older gitmlx may already hold lies: opening it forgets them all."""
    path = tmp_path / "index.sqlite"
    index = ChunkIndex(path)
    index.add_remote_chunks("dir:/x", [ChunkRef(b"\1" * 32, "ab" * 32, 0, 10, 10, CODEC_RAW)])
    index.add_local_chunks("cd" * 32, [(b"\2" * 32, 0, 10)])
    index.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()
    reopened = ChunkIndex(path)
    assert reopened.remote_chunk("dir:/x", b"\1" * 32) is None
    assert reopened.local_chunks([b"\2" * 32]) == {}
    reopened.add_remote_chunks("dir:/x", [ChunkRef(b"\1" * 32, "ab" * 32, 0, 10, 10, CODEC_RAW)])
    reopened.close()
    again = ChunkIndex(path)  # the current version keeps its rows
    assert again.remote_chunk("dir:/x", b"\1" * 32) is not None
    again.close()


def test_a_push_after_a_lying_fetch_uploads_its_own_bytes(tmp_path: Path) -> None:
    """The poisoning scenario in the library: a manifest claims its random chunk is a run
    of zeros; the victim then pushes a file of zeros, which must rebuild as zeros."""
    zeros = bytes(12 * 1024)  # under the minimum chunk size: one chunk
    decoy = random.Random(3).randbytes(len(zeros))
    source = Store(tmp_path / "source")
    pointer = source.insert_stream(io.BytesIO(decoy))
    source.sync()
    remote = LocalRemote(tmp_path / "remote")
    assert upload(source, remote, [pointer]).ok
    honest = decode(read_manifest_bytes(remote.root, pointer.oid), pointer)
    (chunk,) = honest.chunks
    lie = ChunkRef(hashlib.sha256(zeros).digest(), chunk.pack, chunk.offset, chunk.stored, chunk.raw, chunk.codec)
    write_manifest_bytes(remote.root, pointer.oid, Manifest(honest.oid, honest.size, (lie,)).encode())
    new_process()

    victim = Store(tmp_path / "victim")
    assert download(victim, remote, [pointer]).ok
    target = victim.insert_stream(io.BytesIO(zeros))
    assert upload(victim, remote, [target]).ok
    fresh = Store(tmp_path / "fresh")
    result = download(fresh, LocalRemote(tmp_path / "remote"), [Pointer(target.oid, target.size)])
    assert result.ok, result.failed
    with fresh.open(target.oid) as f:
        assert f.read() == zeros
