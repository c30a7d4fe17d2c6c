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
import os
import random
import sqlite3
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitmlx.format import codec as codec_module
from gitmlx.format import layout
from gitmlx.format.manifest import CODEC_GROUPED, CODEC_RAW, ChunkRef, Manifest, decode
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.chunk_index import ChunkIndex
from gitmlx.store.objects import Store
from gitmlx.store.worktreelinks import WorktreeLinks
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
        if codec == CODEC_GROUPED:  # byte planes: the codec's own decoder
            data = bytes(codec_module.decode(codec, data, raw))
        elif codec != CODEC_RAW:
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
    # The victim then pushes every real chunk again (each file, one byte longer): the push
    # proves each claim it would rely on, so no lie reaches the index or a manifest.
    again = [victim.insert_stream(io.BytesIO(c + b"!")) for c in contents]
    victim.sync()
    assert upload(victim, remote, again).ok
    _assert_every_row_proven(victim, remote)
    fresh = Store(tmp / "fresh")
    result = download(fresh, LocalRemote(tmp / "remote"), again)  # each object verified
    assert result.ok, result.failed


def _pushed(tmp_path: Path, seed: int) -> tuple[bytes, Pointer, LocalRemote]:
    """900 KiB of content, pushed from a store of its own to a directory remote."""
    source = Store(tmp_path / "source")
    data = _content(random.Random(seed), 900 * 1024)
    pointer = source.insert_stream(io.BytesIO(data))
    source.sync()
    remote = LocalRemote(tmp_path / "remote")
    assert upload(source, remote, [pointer]).ok
    return data, pointer, remote


def _pack_bytes_pushed(store: Store, remote: LocalRemote, pointer: Pointer) -> int:
    """Push `pointer` from `store`; the bytes of the packs that push added."""
    before = set((remote.root / "packs").rglob("*.pack"))
    assert upload(store, remote, [pointer]).ok
    return sum(p.stat().st_size for p in set((remote.root / "packs").rglob("*.pack")) - before)


def test_honest_manifests_still_teach_the_index(tmp_path: Path) -> None:
    """The proof costs nothing in dedup: an honest fetch records every chunk (as a claim,
    not yet trusted), so a push of the same content from the victim proves the claims
    against the stored object and uploads no chunk again."""
    data, pointer, remote = _pushed(tmp_path, 7)
    hashes = {c.hash for c in decode(read_manifest_bytes(remote.root, pointer.oid), pointer).chunks}

    victim = Store(tmp_path / "victim")
    assert download(victim, remote, [pointer]).ok
    assert _claimed(victim) == hashes
    _assert_every_row_proven(victim, remote)
    # The victim adds the same bytes under another object (one more byte): its push names
    # the known chunks instead of uploading them.
    other = victim.insert_stream(io.BytesIO(data + b"!"))
    new_bytes = _pack_bytes_pushed(victim, remote, other)
    assert new_bytes < 300 * 1024, f"{new_bytes} bytes uploaded again"
    remote_rows, _ = _rows(victim)
    pushed = decode(read_manifest_bytes(remote.root, other.oid), other)
    shared = hashes & {c.hash for c in pushed.chunks}
    assert len(shared) >= len(hashes) - 1  # all but the last chunk
    assert shared <= {r[1] for r in remote_rows}  # proven by that push, and kept
    _assert_every_row_proven(victim, remote)


def _claimed(store: Store) -> set[bytes]:
    db = sqlite3.connect(store.root / "index.sqlite")
    try:
        return {row[0] for row in db.execute("SELECT hash FROM claimed_chunks")}
    finally:
        db.close()


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


ZEROS = bytes(12 * 1024)  # under the minimum chunk size: one chunk


def _decoy_claiming_zeros(tmp_path: Path, seed: int) -> tuple[Pointer, LocalRemote]:
    """A remote holding one random chunk whose manifest claims it is a run of zeros."""
    decoy = random.Random(seed).randbytes(len(ZEROS))
    source = Store(tmp_path / "source")
    pointer = source.insert_stream(io.BytesIO(decoy))
    source.sync()
    remote = LocalRemote(tmp_path / "remote")
    assert upload(source, remote, [pointer]).ok
    honest = decode(read_manifest_bytes(remote.root, pointer.oid), pointer)
    (chunk,) = honest.chunks
    lie = ChunkRef(hashlib.sha256(ZEROS).digest(), chunk.pack, chunk.offset, chunk.stored, chunk.raw, chunk.codec)
    write_manifest_bytes(remote.root, pointer.oid, Manifest(honest.oid, honest.size, (lie,)).encode())
    new_process()
    return pointer, remote


def test_a_push_after_a_lying_fetch_uploads_its_own_bytes(tmp_path: Path) -> None:
    """The poisoning scenario in the library: a manifest claims its random chunk is a run
    of zeros; the victim then pushes a file of zeros, which must rebuild as zeros."""
    zeros = ZEROS
    pointer, remote = _decoy_claiming_zeros(tmp_path, 3)
    victim = Store(tmp_path / "victim")
    assert download(victim, remote, [pointer]).ok
    target = victim.insert_stream(io.BytesIO(zeros))
    assert upload(victim, remote, [target]).ok
    fresh = Store(tmp_path / "fresh")
    result = download(fresh, LocalRemote(tmp_path / "remote"), [Pointer(target.oid, target.size)])
    assert result.ok, result.failed
    with fresh.open(target.oid) as f:
        assert f.read() == zeros


def _thin(store: Store, oid: str, placed: Path) -> None:
    """Leave `oid` as a thin checkout does: its only copy the work-tree file `placed`,
    hard-linked in the store's links folder."""
    with store.open(oid) as f:
        placed.write_bytes(f.read())
    assert store.worktree_links is not None
    os.makedirs(store.worktree_links.folder, exist_ok=True)
    os.link(placed, os.path.join(store.worktree_links.folder, oid))
    store.discard([oid])


@pytest.mark.parametrize("edited", [True, False])
def test_a_thin_work_tree_file_proves_no_lie(tmp_path: Path, edited: bool) -> None:
    """Without a store copy, a claim is proven only from a work-tree file that still
    hashes to the object whole: one edited in place, here into exactly the content the
    lying claim names, proves nothing; an intact one shows the lie."""
    pointer, remote = _decoy_claiming_zeros(tmp_path, 5)
    victim = Store(tmp_path / "victim")
    victim.worktree_links = WorktreeLinks(tmp_path / "git")
    assert download(victim, remote, [pointer]).ok
    placed = tmp_path / "decoy.bin"
    _thin(victim, pointer.oid, placed)
    if edited:
        placed.write_bytes(ZEROS)  # in place: the same inode as the link
    target = victim.insert_stream(io.BytesIO(ZEROS))
    assert upload(victim, remote, [target]).ok
    fresh = Store(tmp_path / "fresh")
    result = download(fresh, LocalRemote(tmp_path / "remote"), [target])
    assert result.ok, result.failed


def test_a_thin_clone_still_reuses_what_it_fetched(tmp_path: Path) -> None:
    """An intact work-tree file proves the claims of its object: a thin clone's push of
    a new version uploads only what changed."""
    data, pointer, remote = _pushed(tmp_path, 8)
    victim = Store(tmp_path / "victim")
    victim.worktree_links = WorktreeLinks(tmp_path / "git")
    assert download(victim, remote, [pointer]).ok
    _thin(victim, pointer.oid, tmp_path / "model.bin")
    other = victim.insert_stream(io.BytesIO(data + b"!"))
    new_bytes = _pack_bytes_pushed(victim, remote, other)
    assert new_bytes < 300 * 1024, f"{new_bytes} bytes uploaded again"
    _assert_every_row_proven(victim, remote)
