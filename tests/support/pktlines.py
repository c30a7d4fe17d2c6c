"""pkt-line streams for the protocol unit tests (gitprotocol-common, "pkt-line Format").

Owns: building a stream from a list of packets and reading every packet back, with gitmlx's
own `write_packet` / `read_packet` (tests/unit/test_pktline.py checks those byte for byte).
Must not: be used where the framing itself is under test with hand-written bytes.
"""

from __future__ import annotations

import io

from gitmlx.git.pktline import read_packet, write_flush, write_packet


def packets(*payloads: bytes | None) -> io.BytesIO:
    """A stream holding these packets (None is a flush), positioned at its start."""
    out = io.BytesIO()
    for payload in payloads:
        if payload is None:
            write_flush(out)
        else:
            write_packet(out, payload)
    out.seek(0)
    return out


def read_all(stream: io.BytesIO) -> list[bytes | None]:
    """Every packet from the stream's position to its end (None for a flush)."""
    result: list[bytes | None] = []
    while True:
        try:
            result.append(read_packet(stream))
        except EOFError:
            return result
