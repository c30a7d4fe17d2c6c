"""git's pkt-line framing (Documentation/gitprotocol-common.txt, "pkt-line Format").

Owns: reading and writing packets on binary streams. A packet is a 4-digit hex length
(including those 4 bytes) and a payload of at most 65516 bytes; "0000" is a flush packet.
Must not: interpret what the packets mean (that is filter_protocol.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from gitmlx.errors import MlxError

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from typing import BinaryIO

MAX_PAYLOAD = 65516
FLUSH = b"0000"
_HEX_DIGITS = b"0123456789abcdefABCDEF"


class PacketError(MlxError):
    """The peer broke the framing: a bad length, or the stream ended inside a packet.

    An expected failure (one error line, exit 1), not a bug: the bytes come from git.
    """

    def __init__(self, message: str) -> None:
        super().__init__(
            f"malformed pkt-line stream from git: {message}",
            "run the git command again; if this repeats, report it with the output of GIT_TRACE_PACKET=1",
        )


class TruncatedPacket(PacketError):
    """The stream ended inside a packet, or inside content before its flush packet: the
    peer went away mid-write (git killed while a filter reads a file)."""


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = stream.read(n)
    if len(data) == n:
        return data
    chunks = [data]
    got = len(data)
    while got < n:
        more = stream.read(n - got)
        if not more:
            raise TruncatedPacket(f"stream ended after {got} of {n} bytes")
        chunks.append(more)
        got += len(more)
    return b"".join(chunks)


def read_packet(stream: BinaryIO) -> bytes | None:
    """The next packet's payload; None for a flush packet. EOFError at a clean end."""
    header = stream.read(4)
    if not header:
        raise EOFError
    if len(header) < 4:
        header += _read_exact(stream, 4 - len(header))
    # Exactly four hex digits: int(..., 16) alone would also take "0x1f", "-000", " 000", "0_00".
    if header.strip(_HEX_DIGITS):
        raise PacketError(f"invalid pkt-line header {header!r}")
    length = int(header, 16)
    if length == 0:
        return None
    if length < 4 or length > MAX_PAYLOAD + 4:
        raise PacketError(f"invalid pkt-line length {header!r}")
    return _read_exact(stream, length - 4)


def read_text_list(stream: BinaryIO) -> list[str]:
    """Text packets up to the next flush, each without its trailing LF."""
    lines = []
    while (payload := read_packet(stream)) is not None:
        lines.append(payload.decode("utf-8", "surrogateescape").removesuffix("\n"))
    return lines


def read_key_values(stream: BinaryIO) -> dict[str, str]:
    """A list of `key=value` text packets up to a flush."""
    peek = getattr(stream, "peek", None)
    if peek is not None:
        buffered = _buffered_key_values(stream, peek)
        if buffered is not None:
            return buffered
    result: dict[str, str] = {}
    for line in read_text_list(stream):
        key, sep, value = line.partition("=")
        if not sep:
            raise PacketError(f"expected key=value, got {line!r}")
        result[key] = value
    return result


def _buffered_key_values(stream: BinaryIO, peek: Callable[[int], bytes]) -> dict[str, str] | None:
    """`read_key_values` parsed from the bytes the stream has buffered, consuming them in
    one read; None, consuming nothing, when the list does not end there or anything is
    off (the packet-by-packet reader then reads it, and raises what it has to).

    git writes a smudge request's packets in one go, so they are all buffered after its
    first read: one read per request instead of two per packet."""
    data = peek(1)
    result: dict[str, str] = {}
    at, end = 0, len(data)
    while at + 4 <= end:
        header = data[at : at + 4]
        if header.strip(_HEX_DIGITS):
            return None
        length = int(header, 16)
        if length == 0:
            stream.read(at + 4)
            return result
        if length < 4 or at + length > end:
            return None
        key, sep, value = data[at + 4 : at + length].decode("utf-8", "surrogateescape").partition("=")
        if not sep:
            return None
        result[key] = value.removesuffix("\n")
        at += length
    return None


def iter_content(stream: BinaryIO) -> Iterator[bytes]:
    """Binary packets up to the next flush."""
    while (payload := read_packet(stream)) is not None:
        yield payload


class ContentReader:
    """A raw-file-like `read(n)` over content packets, ending at the flush packet.

    Like a raw file, `read(n)` may return fewer than `n` bytes (at most one packet's
    worth); only an empty result means the content has ended. If the stream breaks
    first (malformed, or ended before the flush: TruncatedPacket), every later read
    raises that error again and `broken` holds it, so a caller that caught it can never
    mistake the rest for the end of the content.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pending = b""
        self._done = False
        self.broken: PacketError | None = None

    def _next(self) -> bytes | None:
        if self.broken is not None:
            raise self.broken
        try:
            return read_packet(self._stream)
        except EOFError:
            self.broken = TruncatedPacket("stream ended before the content's flush packet")
        except PacketError as exc:
            self.broken = exc
        raise self.broken

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            parts = [self._pending, *self._rest()]
            self._pending = b""
            return b"".join(parts)
        while not self._pending and not self._done:
            packet = self._next()
            if packet is None:
                self._done = True
            else:
                self._pending = packet
        data, self._pending = self._pending[:n], self._pending[n:]
        return data

    def _rest(self) -> Iterator[bytes]:
        while not self._done:
            packet = self._next()
            if packet is None:
                self._done = True
            else:
                yield packet

    def drain(self) -> None:
        """Consume what is left, so the stream is positioned after the flush."""
        self._pending = b""
        for _ in self._rest():
            pass


def write_packet(stream: BinaryIO, payload: bytes) -> None:
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("payload too long for one packet")
    stream.write(b"%04x" % (len(payload) + 4))
    stream.write(payload)


def write_text(stream: BinaryIO, line: str) -> None:
    write_packet(stream, line.encode("utf-8", "surrogateescape") + b"\n")


def write_flush(stream: BinaryIO) -> None:
    stream.write(FLUSH)


class ContentWriter:
    """A file-like `write` that frames any amount of bytes into maximal packets.

    `failed` holds the error of a write to the stream itself (the peer closed its end),
    to tell it from a failure of whatever produces the bytes.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.failed: OSError | None = None

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data)
        try:
            for start in range(0, len(view), MAX_PAYLOAD):
                piece = view[start : start + MAX_PAYLOAD]
                self._stream.write(b"%04x" % (len(piece) + 4))
                self._stream.write(piece)
        except OSError as exc:
            self.failed = exc
            raise
        return len(view)
