"""rebuild.ChunkSplitter: pack bytes arriving in pieces of any size become the object's
bytes, raw chunks passed on in runs and compressed ones decoded whole."""

from __future__ import annotations

import hashlib
import random

import pytest

from gitmlx.errors import IntegrityError
from gitmlx.format import codec
from gitmlx.format.manifest import CODEC_RAW, ChunkRef
from gitmlx.transfer.rebuild import ChunkSplitter
from tests.support.content import Sink


def pack_of(raws: list[bytes]) -> tuple[bytes, list[ChunkRef]]:
    pack, refs = b"", []
    for raw in raws:
        kind, stored = codec.encode(raw)
        refs.append(ChunkRef(hashlib.sha256(raw).digest(), "0" * 64, len(pack), len(stored), len(raw), kind))
        pack += bytes(stored)
    return pack, refs


@pytest.mark.parametrize("piece", [1, 7, 4096, 65_536, 10**9])
def test_pieces_of_any_size_rebuild_the_object(piece: int) -> None:
    rng = random.Random(piece)
    raws = [
        rng.randbytes(rng.randint(1, 30_000)) if i % 3 else b"compressible " * rng.randint(100, 3000) for i in range(40)
    ]
    pack, refs = pack_of(raws)
    assert {r.codec for r in refs} != {CODEC_RAW}, "the test needs compressed chunks too"
    out = Sink()
    splitter = ChunkSplitter(refs, out)  # type: ignore[arg-type]
    for start in range(0, len(pack), piece):
        splitter.write(memoryview(pack)[start : start + piece])
    splitter.finish()
    assert b"".join(out.parts) == b"".join(raws)
    if piece == 10**9:  # one write: raw runs between compressed chunks each come as one piece
        assert len(out.parts) < len(raws)


def test_more_bytes_than_the_chunks_is_an_integrity_error() -> None:
    pack, refs = pack_of([b"a" * 100, random.Random(1).randbytes(100)])
    splitter = ChunkSplitter(refs, Sink())  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        splitter.write(pack + b"x")


def test_a_short_pack_is_an_integrity_error() -> None:
    pack, refs = pack_of([random.Random(2).randbytes(100), random.Random(3).randbytes(100)])
    splitter = ChunkSplitter(refs, Sink())  # type: ignore[arg-type]
    splitter.write(pack[:-1])
    with pytest.raises(IntegrityError):
        splitter.finish()


@pytest.mark.parametrize("reused", [False, True])
def test_the_object_is_right_whether_the_reader_reuses_its_buffer_or_not(reused: bool) -> None:
    # A buffer the reader refills (readinto) holds the next read's bytes once `write`
    # returns: what the splitter keeps of it (a compressed chunk split between reads)
    # must be a copy.
    rng = random.Random(4)
    raws = [rng.randbytes(rng.randint(1_000, 20_000)) if i % 2 else b"squeeze " * 2_000 for i in range(30)]
    pack, refs = pack_of(raws)
    assert {r.codec for r in refs} != {CODEC_RAW}
    out = Sink()
    splitter = ChunkSplitter(refs, out)  # type: ignore[arg-type]
    buffer = bytearray(65_536)
    for start in range(0, len(pack), len(buffer)):
        piece = pack[start : start + len(buffer)]
        if reused:
            buffer[: len(piece)] = piece
            splitter.write(memoryview(buffer)[: len(piece)])
        else:
            splitter.write(piece)
    if reused:
        buffer[:] = bytes(len(buffer))  # the reader's next use of its buffer
    splitter.finish()
    assert b"".join(out.parts) == b"".join(raws)
