"""A push that may store byte-grouped chunks (codec 2), read back by every decode path:
whole-object downloads (rebuild), batched small objects, lazy ranged reads of the Python
API, and `fsck --remote --full`. Without `grouped`, no chunk is codec 2 (what a format 1
remote's readers need). A directory remote and real stores; no git."""

from __future__ import annotations

import io
import random
from pathlib import Path

from gitmlx.api.lazy import RemoteSource
from gitmlx.format.manifest import CODEC_GROUPED, Manifest, decode
from gitmlx.format.pointer import Pointer
from gitmlx.maintenance.fsck import check_remote
from gitmlx.remotes.local import LocalRemote
from gitmlx.store.objects import Store
from gitmlx.transfer.download import download
from gitmlx.transfer.packer import SOLO_MIN
from gitmlx.transfer.upload import upload
from tests.support.content import float_bytes
from tests.support.remote_layout import make_format_1, read_manifest_bytes, remote_format

KIB = 1024


def _contents() -> dict[str, bytes]:
    rng = random.Random(2)
    fp32 = float_bytes(150_000, "fp32")  # ~600 KB: chunked one chunk at a time
    return {
        "fp32": fp32,
        # A large object (two-pass chunking) made of one fp32 block repeated with a few
        # odd-sized headers, so element boundaries sit at every phase.
        "large": b"".join(rng.randbytes(i) + fp32[i * 4096 :] for i in range(1, 16))[: SOLO_MIN + 333],
        **{f"small-{i}": float_bytes(3000 + i, f"small-{i}", "e")[i:] for i in range(6)},  # fp16, batched
        "text": b"lorem ipsum dolor sit amet " * 20_000,
    }


def _push(
    tmp_path: Path, grouped: bool | None, format_1: bool = False
) -> tuple[LocalRemote, dict[str, tuple[Pointer, bytes]]]:
    source = Store(tmp_path / "source")
    objects = {name: (source.insert_stream(io.BytesIO(data)), data) for name, data in _contents().items()}
    source.sync()
    if format_1:
        make_format_1(tmp_path / "remote")
    remote = LocalRemote(tmp_path / "remote")
    result = upload(source, remote, [p for p, _ in objects.values()], concurrency=2, grouped=grouped)
    assert result.ok, result.failed
    return remote, objects


def _manifest(remote: LocalRemote, pointer: Pointer) -> Manifest:
    return decode(read_manifest_bytes(remote.root, pointer.oid), pointer)


def test_grouped_chunks_are_read_back_by_every_decode_path(tmp_path: Path) -> None:
    remote, objects = _push(tmp_path, grouped=True)
    codecs = {name: {c.codec for c in _manifest(remote, p).chunks} for name, (p, _) in objects.items()}
    assert all(CODEC_GROUPED in codecs[name] for name in objects if name != "text"), codecs
    assert CODEC_GROUPED not in codecs["text"]
    fp32, data = objects["fp32"]
    assert sum(c.stored for c in _manifest(remote, fp32).chunks) < 0.9 * len(data)

    clone = Store(tmp_path / "clone")
    result = download(clone, remote, [p for p, _ in objects.values()], concurrency=2)
    assert result.ok, result.failed
    for pointer, data in objects.values():
        with clone.open(pointer.oid) as f:
            assert f.read() == data

    large, data = objects["large"]
    source = RemoteSource(remote, _manifest(remote, large), "'large'")
    assert b"".join(source.pieces(5_000_001, 300_000)) == data[5_000_001:5_300_001]

    report = check_remote(clone, remote, [p for p, _ in objects.values()], full=True, concurrency=2)
    assert not report.problems


def test_without_grouping_no_chunk_is_byte_grouped(tmp_path: Path) -> None:
    remote, objects = _push(tmp_path, grouped=False)
    assert all(CODEC_GROUPED not in {c.codec for c in _manifest(remote, p).chunks} for p, _ in objects.values())


def test_a_format_2_remote_gets_byte_grouped_chunks_by_default(tmp_path: Path) -> None:
    remote, objects = _push(tmp_path, grouped=None)
    assert remote_format(remote.root) == 2
    fp32, _ = objects["fp32"]
    assert CODEC_GROUPED in {c.codec for c in _manifest(remote, fp32).chunks}


def test_a_format_1_remote_never_gets_byte_grouped_chunks(tmp_path: Path) -> None:
    """Its readers (the previous release among them) refuse a codec they do not know,
    so even a caller asking for grouping gets zstd or raw chunks there."""
    remote, objects = _push(tmp_path, grouped=True, format_1=True)
    assert remote_format(remote.root) == 1
    assert all(CODEC_GROUPED not in {c.codec for c in _manifest(remote, p).chunks} for p, _ in objects.values())
