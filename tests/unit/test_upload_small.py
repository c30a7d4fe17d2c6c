"""A push of small objects: an object of at most chunking.MAX_SIZE bytes is one chunk named
by its oid (no cutting, no second hash), its compression is decided from a sample, and new
packs are built where a directory remote renames them in (no second copy of their bytes).

A directory remote and a real store; no git.
"""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path

import pytest

from gitmlx.format import chunking
from gitmlx.format.manifest import CODEC_GROUPED, CODEC_RAW, CODEC_ZSTD, Manifest, decode
from gitmlx.format.pointer import Pointer
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.transfer import packer
from gitmlx.transfer.download import download
from gitmlx.transfer.pack_writer import StoreMaps
from gitmlx.transfer.upload import upload
from tests.support.content import float_bytes
from tests.support.formats import pack_table_id
from tests.support.integrity import check_remote_dir
from tests.support.remote_layout import make_format_1, read_manifest_bytes

KIB = 1024


class PackPaths(LocalRemote):
    """Records the folder each pack is put from."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.pack_sources: list[Path] = []

    def put_file(self, key, path, progress=None, consume=False) -> None:  # type: ignore[override]
        if key.startswith("packs/"):
            self.pack_sources.append(Path(path).parent)
        super().put_file(key, path, progress, consume)


def _push(
    tmp_path: Path, contents: dict[str, bytes], format_1: bool = False
) -> tuple[PackPaths, dict[str, Manifest], Store]:
    store = Store(tmp_path / "store")
    pointers = {name: store.insert_stream(io.BytesIO(data)) for name, data in contents.items()}
    store.sync()
    if format_1:
        make_format_1(tmp_path / "remote")
    remote = PackPaths(tmp_path / "remote")
    result = upload(store, remote, list(pointers.values()), concurrency=2)
    assert result.ok, result.failed
    manifests = {name: decode(read_manifest_bytes(remote.root, p.oid), p) for name, p in pointers.items()}
    return remote, manifests, store


def test_an_object_up_to_the_chunk_maximum_is_one_chunk_named_by_its_oid(tmp_path: Path) -> None:
    rng = random.Random(7)
    contents = {
        "200k": rng.randbytes(200 * KIB),
        "max": rng.randbytes(chunking.MAX_SIZE),
        "300k": rng.randbytes(300 * KIB),
    }
    # Content-defined chunking would cut the small ones: the rule, not luck, keeps them whole.
    assert len(list(chunking.chunks(io.BytesIO(contents["200k"])))) > 1
    assert len(list(chunking.chunks(io.BytesIO(contents["max"])))) > 1
    _, manifests, _ = _push(tmp_path, contents)
    for name in ("200k", "max"):
        (chunk,) = manifests[name].chunks
        assert chunk.hash == bytes.fromhex(manifests[name].oid)
        assert (chunk.raw, chunk.codec) == (len(contents[name]), CODEC_RAW)
    large = manifests["300k"].chunks
    assert len(large) > 1 and all(c.hash != bytes.fromhex(manifests["300k"].oid) for c in large)


def test_small_objects_are_compressed_only_when_they_shrink(tmp_path: Path) -> None:
    rng = random.Random(8)
    contents = {
        "random": rng.randbytes(64 * KIB),
        "text": b"".join(rng.choice((b"alpha ", b"beta ", b"gamma\n")) for _ in range(20_000)),
        "fp32": float_bytes(30_000, "small-fp32"),
        "tiny": b"abc" * 500,  # shorter than the sample: tried whole
        "incompressible start": rng.randbytes(8 * KIB) + bytes(100 * KIB),  # the sample decides
    }
    remote, manifests, store = _push(tmp_path, contents)
    codecs = {name: m.chunks[0].codec for name, m in manifests.items()}
    assert codecs == {
        "random": CODEC_RAW,
        "text": CODEC_ZSTD,
        "fp32": CODEC_GROUPED,
        "tiny": CODEC_ZSTD,
        "incompressible start": CODEC_RAW,
    }
    assert all(len(m.chunks) == 1 and m.chunks[0].stored <= m.chunks[0].raw for m in manifests.values())
    clone = Store(tmp_path / "clone")
    pointers = [Pointer(m.oid, m.size) for m in manifests.values()]
    assert download(clone, remote, pointers, concurrency=2).ok
    for name, data in contents.items():
        with clone.open(manifests[name].oid) as f:
            assert f.read() == data


def test_packs_are_built_in_a_directory_remotes_own_staging_folder(tmp_path: Path) -> None:
    rng = random.Random(9)
    remote, _, store = _push(tmp_path, {f"f{i}": rng.randbytes(50 * KIB) for i in range(20)})
    assert remote.pack_sources and set(remote.pack_sources) == {remote.root / "tmp"}
    assert not list((remote.root / "tmp").iterdir())  # each renamed in, none left behind


def test_objects_in_store_packs_go_into_upload_packs_whole_and_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Objects read from their mapped store pack (no copy) among objects that compress
    (copied into the pack's blocks): every pack hashes to its name and every object
    comes back. 300 objects: past a batch of views, in both packs of two threads, with
    the maps' pages dropped while the writers read them."""
    monkeypatch.setattr(StoreMaps, "MAPPED_RSS", 64 * KIB)
    monkeypatch.setattr(packer, "MAP_MIN", 4 * KIB)  # small objects, many of them, mapped too
    rng = random.Random(10)
    contents = {}
    for i in range(300):
        if i % 7 == 3:
            contents[f"text{i}"] = b"".join(rng.choice((b"alpha ", b"beta ")) for _ in range(900 + i))
        else:
            contents[f"raw{i}"] = rng.randbytes(rng.randrange(4 * KIB, 20 * KIB))
    remote, manifests, store = _push(tmp_path, contents)
    assert all(isinstance(store.locate(m.oid), tuple) for m in manifests.values())  # packed in the store
    packs = list((remote.root / "packs").rglob("*.pack"))
    assert len(packs) >= 2
    spans: dict[str, set[tuple[int, int]]] = {}
    for m in manifests.values():
        for c in m.chunks:
            spans.setdefault(c.pack, set()).add((c.offset, c.stored))
    for path in packs:  # each named by its table id (docs/storage-format.md, "Pack ids")
        data, ordered = path.read_bytes(), sorted(spans[path.stem])
        assert [offset for offset, _ in ordered] == [0] + [o + n for o, n in ordered[:-1]]
        assert ordered[-1][0] + ordered[-1][1] == len(data)
        assert pack_table_id(data[o : o + n] for o, n in ordered) == path.stem
        assert hashlib.sha256(data).hexdigest() != path.stem
    clone = Store(tmp_path / "clone")
    assert download(clone, remote, [Pointer(m.oid, m.size) for m in manifests.values()], concurrency=2).ok
    for name, data in contents.items():
        with clone.open(manifests[name].oid) as f:
            assert f.read() == data


def test_a_format_1_remote_gets_packs_named_by_the_hash_of_their_bytes(tmp_path: Path) -> None:
    """Format 1's rule ("Pack ids": the byte id), mapped objects and compressed ones alike."""
    rng = random.Random(11)
    contents = {f"raw{i}": rng.randbytes(100 * KIB) for i in range(6)}
    contents["text"] = b"".join(rng.choice((b"alpha ", b"beta ")) for _ in range(9_000))
    remote, manifests, _ = _push(tmp_path, contents, format_1=True)
    assert {c.codec for m in manifests.values() for c in m.chunks} == {CODEC_RAW, CODEC_ZSTD}
    packs = list((remote.root / "packs").rglob("*.pack"))
    assert packs and all(hashlib.sha256(p.read_bytes()).hexdigest() == p.stem for p in packs)


def test_the_remote_checker_finds_a_pack_whose_bytes_no_longer_match_its_table_id(tmp_path: Path) -> None:
    """tests/support/integrity.py checks a table-named pack by its name (the reliability
    tests rely on it): one byte changed in place is reported without rebuilding objects."""
    rng = random.Random(12)
    remote, _, _ = _push(tmp_path, {f"raw{i}": rng.randbytes(30 * KIB) for i in range(8)})
    assert check_remote_dir(remote.root, rebuild_objects=False).ok
    (pack,) = list((remote.root / "packs").rglob("*.pack"))
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    data[100] ^= 1
    pack.write_bytes(bytes(data))
    problems = check_remote_dir(remote.root, rebuild_objects=False).problems
    assert problems[0] == f"pack {pack.stem[:10]} hashes to neither its name nor its table id"
    assert len(problems) == 9 and all("names a missing or short pack" in p for p in problems[1:])
