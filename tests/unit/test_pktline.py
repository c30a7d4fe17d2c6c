"""gitmlx.git.pktline against in-memory streams (gitprotocol-common, "pkt-line Format")."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.errors import MlxError
from gitmlx.git import pktline
from gitmlx.git.pktline import (
    FLUSH,
    MAX_PAYLOAD,
    ContentReader,
    ContentWriter,
    PacketError,
    TruncatedPacket,
    read_key_values,
    read_packet,
    read_text_list,
    write_flush,
    write_packet,
    write_text,
)
from tests.support.pktlines import packets, read_all


class Trickle(io.RawIOBase):
    """A raw stream that hands out at most `step` bytes per read, like a pipe might."""

    def __init__(self, data: bytes, step: int = 1) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            n = len(self._data)
        chunk = self._data[self._pos : self._pos + min(n, self._step)]
        self._pos += len(chunk)
        return chunk


# --- writing ------------------------------------------------------------------------


def test_write_packet_prefixes_four_hex_digits_counting_themselves() -> None:
    out = io.BytesIO()
    write_packet(out, b"hello")
    assert out.getvalue() == b"0009hello"


def test_write_packet_uses_lowercase_hex() -> None:
    out = io.BytesIO()
    write_packet(out, b"x" * 6)
    assert out.getvalue()[:4] == b"000a"


def test_write_text_appends_lf() -> None:
    out = io.BytesIO()
    write_text(out, "command=clean")
    assert out.getvalue() == b"0012command=clean\n"


def test_write_flush() -> None:
    out = io.BytesIO()
    write_flush(out)
    assert out.getvalue() == FLUSH == b"0000"


def test_write_packet_accepts_max_payload() -> None:
    out = io.BytesIO()
    write_packet(out, b"a" * MAX_PAYLOAD)
    assert MAX_PAYLOAD == 65516
    assert out.getvalue()[:4] == b"fff0"
    assert len(out.getvalue()) == 65520


def test_write_packet_refuses_more_than_max_payload() -> None:
    out = io.BytesIO()
    with pytest.raises(ValueError):
        write_packet(out, b"a" * (MAX_PAYLOAD + 1))
    assert out.getvalue() == b""


# --- reading ------------------------------------------------------------------------


def test_read_packet_returns_payload_then_none_for_flush() -> None:
    stream = packets(b"abc", None, b"", b"def")
    assert read_packet(stream) == b"abc"
    assert read_packet(stream) is None
    assert read_packet(stream) == b""
    assert read_packet(stream) == b"def"
    with pytest.raises(EOFError):
        read_packet(stream)


def test_read_packet_accepts_max_payload() -> None:
    stream = io.BytesIO(b"fff0" + b"z" * MAX_PAYLOAD)
    assert read_packet(stream) == b"z" * MAX_PAYLOAD


def test_read_packet_refuses_length_above_max() -> None:
    stream = io.BytesIO(b"fff1" + b"z" * (MAX_PAYLOAD + 1))
    with pytest.raises(PacketError):
        read_packet(stream)


def test_read_packet_eof_at_packet_boundary_is_eoferror() -> None:
    with pytest.raises(EOFError):
        read_packet(io.BytesIO(b""))


@pytest.mark.parametrize("data", [b"0", b"00", b"000"])
def test_read_packet_eof_inside_header_is_packet_error(data: bytes) -> None:
    with pytest.raises(PacketError):
        read_packet(io.BytesIO(data))


@pytest.mark.parametrize("data", [b"0009", b"0009hell", b"fff0" + b"a" * 100])
def test_read_packet_eof_inside_payload_is_packet_error(data: bytes) -> None:
    with pytest.raises(PacketError):
        read_packet(io.BytesIO(data))


@pytest.mark.parametrize(
    "header",
    [
        b"zzzz",
        b"00g9",
        b"0001",  # delim-pkt and response-end-pkt are not part of the filter protocol
        b"0002",
        b"0003",
        b"-000",
        b"+000",
        b" 000",
        b"000 ",
        b"\t000",
        b"0_00",
        b"0x00",
        b"0x1f",
        b"+01f",
        b"\x00\x00\x00\x00",
        b"\xff\xff\xff\xff",
        b"\xd9\xa0\xd9\xa0",  # Arabic-Indic digits in UTF-8: not hex digits
    ],
)
def test_read_packet_bad_header_raises_packet_error(header: bytes) -> None:
    stream = io.BytesIO(header + b"x" * 64)
    with pytest.raises(PacketError):
        read_packet(stream)


def test_read_packet_accepts_uppercase_hex_like_git() -> None:
    # git's reader decodes the length with hexval(), which takes either case.
    assert read_packet(io.BytesIO(b"000Aabcdef")) == b"abcdef"


def test_read_packet_survives_short_reads() -> None:
    data = packets(b"hello", None, b"x" * 1000).getvalue()
    stream = Trickle(data, step=1)
    assert read_packet(stream) == b"hello"
    assert read_packet(stream) is None
    assert read_packet(stream) == b"x" * 1000
    with pytest.raises(EOFError):
        read_packet(stream)


def test_read_text_list_strips_one_lf_and_stops_at_flush() -> None:
    stream = packets(b"git-filter-client\n", b"version=2\n", b"no-lf", b"two\n\n", None, b"after")
    assert read_text_list(stream) == ["git-filter-client", "version=2", "no-lf", "two\n"]
    assert read_packet(stream) == b"after"


def test_read_text_list_keeps_non_utf8_bytes() -> None:
    stream = packets(b"pathname=caf\xe9.bin\n", None)
    [line] = read_text_list(stream)
    assert line.encode("utf-8", "surrogateescape") == b"pathname=caf\xe9.bin"


def test_write_text_round_trips_non_utf8_paths() -> None:
    out = io.BytesIO()
    write_text(out, b"pathname=\xff.bin".decode("utf-8", "surrogateescape"))
    write_flush(out)
    out.seek(0)
    assert read_text_list(out) == [b"pathname=\xff.bin".decode("utf-8", "surrogateescape")]


def test_read_key_values() -> None:
    stream = packets(b"command=smudge\n", b"pathname=a=b.bin\n", b"empty=\n", None)
    assert read_key_values(stream) == {"command": "smudge", "pathname": "a=b.bin", "empty": ""}


def test_read_key_values_refuses_a_line_without_equals() -> None:
    with pytest.raises(PacketError):
        read_key_values(packets(b"command\n", None))


def test_read_key_values_eof_before_anything_is_eoferror() -> None:
    with pytest.raises(EOFError):
        read_key_values(io.BytesIO(b""))


def test_read_key_values_from_a_buffered_stream_leaves_it_at_the_content() -> None:
    # The filter's stream is buffered: the whole request is parsed from the buffer at once.
    data = packets(b"command=smudge\n", b"pathname=a=b.bin\n", None, b"content", None).getvalue()
    stream = io.BufferedReader(io.BytesIO(data))
    assert read_key_values(stream) == {"command": "smudge", "pathname": "a=b.bin"}
    assert ContentReader(stream).read() == b"content"


def test_read_key_values_of_a_request_split_across_reads() -> None:
    data = packets(b"command=smudge\n", b"pathname=x.bin\n", b"can-delay=1\n", None, None).getvalue()
    stream = io.BufferedReader(TrickleInto(data, step=7))
    assert read_key_values(stream) == {"command": "smudge", "pathname": "x.bin", "can-delay": "1"}
    assert ContentReader(stream).read() == b""


class TrickleInto(Trickle):
    """A Trickle that io.BufferedReader can read from (it calls `readinto`)."""

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


_REQUEST_PARTS = [b"0000", b"0004", b"0005a", b"000ahello\n", b"0008k=v\n", b"000bk=v\n\n", b"00", b"zz", b"0x1f"]


def _key_value_lists(stream: io.RawIOBase | io.BufferedIOBase) -> list[object]:
    """Every key=value list `read_key_values` reads from `stream`, then how it ended."""
    found: list[object] = []
    try:
        while True:
            found.append(read_key_values(stream))  # type: ignore[arg-type]
    except (PacketError, EOFError) as exc:
        found.append(type(exc))
    return found


@given(st.lists(st.sampled_from(_REQUEST_PARTS)), st.integers(1, 40))
def test_read_key_values_reads_the_same_buffered_or_not(parts: list[bytes], step: int) -> None:
    data = b"".join(parts)
    unbuffered = _key_value_lists(io.BytesIO(data))
    assert _key_value_lists(io.BufferedReader(io.BytesIO(data))) == unbuffered
    assert _key_value_lists(io.BufferedReader(TrickleInto(data, step), buffer_size=64)) == unbuffered


# --- ContentReader ------------------------------------------------------------------


def test_content_reader_short_reads_stay_within_one_packet() -> None:
    stream = packets(b"abc", b"defgh", None, b"next")
    reader = ContentReader(stream)
    assert reader.read(2) == b"ab"
    assert reader.read(10) == b"c"  # short read: the rest of the first packet only
    assert reader.read(10) == b"defgh"
    assert reader.read(10) == b""
    assert reader.read(10) == b""
    assert read_packet(stream) == b"next"


def test_content_reader_read_all() -> None:
    stream = packets(b"abc", b"def", None, b"next")
    reader = ContentReader(stream)
    assert reader.read(1) == b"a"
    assert reader.read() == b"bcdef"
    assert reader.read() == b""
    assert reader.read(5) == b""
    assert read_packet(stream) == b"next"


def test_content_reader_skips_empty_packets() -> None:
    stream = packets(b"", b"abc", b"", None)
    reader = ContentReader(stream)
    assert reader.read(100) == b"abc"
    assert reader.read(100) == b""


def test_content_reader_empty_content() -> None:
    stream = packets(None, b"next")
    reader = ContentReader(stream)
    assert reader.read(10) == b""
    assert read_packet(stream) == b"next"


@pytest.mark.parametrize("consumed", [0, 1, 3, 4, 7])
def test_content_reader_drain_positions_after_flush(consumed: int) -> None:
    stream = packets(b"abcd", b"efg", None, b"next", None)
    reader = ContentReader(stream)
    got = b""
    while len(got) < consumed:
        got += reader.read(consumed - len(got))
    assert got == b"abcdefg"[:consumed]
    reader.drain()
    reader.drain()  # twice is harmless
    assert reader.read(10) == b""
    assert read_packet(stream) == b"next"


def test_content_reader_drain_after_full_read() -> None:
    stream = packets(b"abc", None, b"next")
    reader = ContentReader(stream)
    assert reader.read() == b"abc"
    reader.drain()
    assert read_packet(stream) == b"next"


def test_content_reader_eof_before_flush_is_a_truncated_packet_every_time() -> None:
    """git went away mid-file: a reader that caught the error must not then see b"" (the
    end of the content) and take what it read for the whole file."""
    reader = ContentReader(packets(b"abc"))
    assert reader.read(3) == b"abc"
    with pytest.raises(TruncatedPacket):
        reader.read(3)
    assert isinstance(reader.broken, TruncatedPacket)
    with pytest.raises(TruncatedPacket):
        reader.read(3)
    with pytest.raises(TruncatedPacket):
        reader.drain()


def test_content_reader_keeps_raising_a_malformed_packet() -> None:
    reader = ContentReader(io.BytesIO(b"0007abczzzz"))
    assert reader.read(3) == b"abc"
    with pytest.raises(PacketError) as raised:
        reader.read(3)
    assert not isinstance(raised.value, TruncatedPacket) and reader.broken is raised.value
    with pytest.raises(PacketError):
        reader.read()


def test_packet_errors_are_expected_failures_with_a_hint() -> None:
    with pytest.raises(MlxError) as raised:
        read_packet(io.BytesIO(b"00"))
    assert isinstance(raised.value, TruncatedPacket)
    assert "pkt-line" in raised.value.message and raised.value.hint


def test_content_reader_over_trickling_stream() -> None:
    data = packets(b"x" * 5000, b"y" * 10, None).getvalue()
    reader = ContentReader(Trickle(data, step=7))
    got = b""
    while block := reader.read(4096):
        got += block
    assert got == b"x" * 5000 + b"y" * 10


# --- ContentWriter ------------------------------------------------------------------


def test_content_writer_splits_into_max_size_packets() -> None:
    out = io.BytesIO()
    data = bytes(range(256)) * 600  # 153600 bytes: two full packets and a remainder
    assert ContentWriter(out).write(data) == len(data)
    out.seek(0)
    got = read_all(out)
    assert [len(p) for p in got] == [MAX_PAYLOAD, MAX_PAYLOAD, len(data) - 2 * MAX_PAYLOAD]
    assert b"".join(got) == data


def test_content_writer_exact_multiple_has_no_empty_packet() -> None:
    out = io.BytesIO()
    ContentWriter(out).write(b"q" * (2 * MAX_PAYLOAD))
    out.seek(0)
    assert [len(p) for p in read_all(out)] == [MAX_PAYLOAD, MAX_PAYLOAD]


def test_content_writer_writes_nothing_for_empty_data() -> None:
    out = io.BytesIO()
    assert ContentWriter(out).write(b"") == 0
    assert out.getvalue() == b""


def test_content_writer_accepts_memoryview() -> None:
    out = io.BytesIO()
    ContentWriter(out).write(memoryview(b"abcdef")[1:4])
    assert out.getvalue() == b"0007bcd"


# --- properties ---------------------------------------------------------------------


@given(st.binary(max_size=600))
def test_reader_raises_only_packet_error_or_eof(data: bytes) -> None:
    stream = io.BytesIO(data)
    try:
        while True:
            read_packet(stream)
    except (PacketError, EOFError):
        pass


@given(st.lists(st.sampled_from([b"0000", b"0004", b"0005a", b"000ahello\n", b"0008k=v\n", b"00", b"zz", b"0x1f"])))
def test_higher_level_readers_raise_only_packet_error_or_eof(parts: list[bytes]) -> None:
    data = b"".join(parts)
    for read in (read_key_values, read_text_list, lambda s: ContentReader(s).read(), pktline.iter_content):
        stream = io.BytesIO(data)
        try:
            while True:
                result = read(stream)
                if not isinstance(result, (bytes, list, dict)):
                    list(result)
                    break
        except (PacketError, EOFError):
            pass


def repeated(min_size: int, max_size: int) -> st.SearchStrategy[bytes]:
    """Large byte strings built cheaply: a short random pattern repeated to a random length."""
    return st.builds(
        lambda pattern, n: (pattern * (n // len(pattern) + 1))[:n],
        st.binary(min_size=1, max_size=16),
        st.integers(min_size, max_size),
    )


payload_lists = st.lists(
    st.one_of(st.none(), st.binary(max_size=300), repeated(MAX_PAYLOAD - 2, MAX_PAYLOAD)),
    max_size=8,
)


@given(payload_lists)
def test_write_then_read_round_trips(payloads: list[bytes | None]) -> None:
    assert read_all(packets(*payloads)) == payloads


@given(st.lists(st.one_of(st.binary(max_size=300), repeated(0, 3 * MAX_PAYLOAD + 5)), max_size=3))
def test_content_writer_then_reader_round_trips(chunks: list[bytes]) -> None:
    out = io.BytesIO()
    writer = ContentWriter(out)
    for chunk in chunks:
        writer.write(chunk)
    write_flush(out)
    write_packet(out, b"after")
    out.seek(0)
    reader = ContentReader(out)
    assert reader.read() == b"".join(chunks)
    assert read_packet(out) == b"after"
