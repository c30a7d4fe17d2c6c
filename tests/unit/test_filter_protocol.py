"""gitmlx.git.filter_protocol: whole filter-process conversations over in-memory streams
(gitattributes(5), "Long Running Filter Process")."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from gitmlx.checkout import filters
from gitmlx.errors import MlxError
from gitmlx.git.filter_protocol import Body, HandshakeError, handshake, serve
from gitmlx.git.pktline import (
    MAX_PAYLOAD,
    ContentReader,
    ContentWriter,
    PacketError,
    TruncatedPacket,
)
from gitmlx.store.objects import Store
from tests.support.pktlines import packets, read_all

WELCOME = [b"git-filter-client\n", b"version=2\n", None]
CAPABILITIES = [b"capability=clean\n", b"capability=smudge\n", b"capability=delay\n", None]
SERVER_HANDSHAKE = [b"git-filter-server\n", b"version=2\n", None, b"capability=clean\n", b"capability=smudge\n", None]
CLEAN_ONLY_HANDSHAKE = [b"git-filter-server\n", b"version=2\n", None, b"capability=clean\n", None]


def encode(items: list[bytes | None]) -> bytes:
    return packets(*items).getvalue()


def decode(data: bytes) -> list[bytes | None]:
    return read_all(io.BytesIO(data))


def request(command: str, pathname: str, content: bytes, extra: tuple[bytes, ...] = ()) -> list[bytes | None]:
    chunks = [content[i : i + MAX_PAYLOAD] for i in range(0, len(content), MAX_PAYLOAD)]
    return [f"command={command}\n".encode(), f"pathname={pathname}\n".encode(), *extra, None, *chunks, None]


def success(content: bytes) -> list[bytes | None]:
    chunks = [content[i : i + MAX_PAYLOAD] for i in range(0, len(content), MAX_PAYLOAD)]
    return [b"status=success\n", None, *chunks, None, None]


ERROR = [b"status=error\n", None]


class Recorder:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str, BaseException]] = []

    def on_error(self, command: str, pathname: str, exc: BaseException) -> None:
        self.errors.append((command, pathname, exc))


def run(conversation: list[bytes | None], handlers: dict, recorder: Recorder | None = None) -> list[bytes | None]:
    recorder = recorder or Recorder()
    out = io.BytesIO()
    serve(io.BytesIO(encode(conversation)), out, handlers, recorder.on_error)
    return decode(out.getvalue())


# --- fake handlers: they only show what the protocol passes through --------------------


def upper_clean(command: str, meta: dict[str, str], content: ContentReader) -> Body:
    data = content.read()
    return lambda sink: sink.write(data.upper())


def reverse_smudge(command: str, meta: dict[str, str], content: ContentReader) -> Body:
    data = content.read()
    if meta["pathname"].startswith("fail"):
        raise MlxError(f"'{meta['pathname']}': object missing", "run 'git mlx pull'")
    if meta["pathname"].startswith("half"):

        def half(sink: ContentWriter) -> None:
            sink.write(b"partial")
            raise MlxError("bytes failed verification")

        return half
    return lambda sink: sink.write(data[::-1])


HANDLERS = {"clean": upper_clean, "smudge": reverse_smudge}


# --- handshake ----------------------------------------------------------------------


def test_handshake_agrees_on_what_both_sides_have() -> None:
    inp = io.BytesIO(encode(WELCOME + CAPABILITIES))
    out = io.BytesIO()
    agreed = handshake(inp, out, ("clean", "smudge"))
    assert agreed == {"clean", "smudge"}
    assert decode(out.getvalue()) == SERVER_HANDSHAKE


def test_handshake_does_not_accept_delay_or_what_git_did_not_offer() -> None:
    inp = io.BytesIO(encode([*WELCOME, b"capability=smudge\n", b"capability=delay\n", None]))
    out = io.BytesIO()
    assert handshake(inp, out, ("clean", "smudge")) == {"smudge"}
    assert decode(out.getvalue())[3:] == [b"capability=smudge\n", None]


def test_handshake_accepts_version_2_among_several() -> None:
    welcome = [b"git-filter-client\n", b"version=2\n", b"version=3\n", None]
    assert handshake(io.BytesIO(encode(welcome + CAPABILITIES)), io.BytesIO(), ("clean",)) == {"clean"}


@pytest.mark.parametrize(
    "welcome",
    [
        [b"git-filter-client\n", b"version=1\n", None],
        [b"git-filter-server\n", b"version=2\n", None],
        [b"version=2\n", None],
        [None],
    ],
)
def test_handshake_refuses_an_unexpected_welcome(welcome: list[bytes | None]) -> None:
    out = io.BytesIO()
    with pytest.raises(HandshakeError):
        handshake(io.BytesIO(encode(welcome + CAPABILITIES)), out, ("clean", "smudge"))
    assert out.getvalue() == b""


def test_serve_returns_quietly_when_git_closes_before_the_handshake() -> None:
    assert run([], HANDLERS) == []


def test_serve_returns_after_handshake_when_git_closes() -> None:
    assert run(WELCOME + CAPABILITIES, HANDLERS) == SERVER_HANDSHAKE


# --- requests -----------------------------------------------------------------------


def test_full_conversation_clean_then_smudge() -> None:
    big = bytes(range(256)) * 700  # several packets each way
    conversation = [
        *WELCOME,
        *CAPABILITIES,
        *request("clean", "a.bin", b"hello"),
        *request("smudge", "dir/b.bin", big, extra=(b"ref=refs/heads/main\n", b"treeish=abc\n")),
    ]
    assert run(conversation, HANDLERS) == [*SERVER_HANDSHAKE, *success(b"HELLO"), *success(big[::-1])]


def test_handler_sees_request_metadata() -> None:
    seen: list[dict[str, str]] = []

    def handler(command: str, meta: dict[str, str], content: ContentReader) -> Body:
        seen.append(dict(meta))
        content.read()
        return lambda sink: None

    conversation = [*WELCOME, *CAPABILITIES, *request("smudge", "x y.bin", b"", extra=(b"blob=0123\n",))]
    assert run(conversation, {"clean": handler, "smudge": handler}) == [*SERVER_HANDSHAKE, *success(b"")]
    assert seen == [{"command": "smudge", "pathname": "x y.bin", "blob": "0123"}]


def test_handler_error_answers_status_error_and_the_next_request_still_works() -> None:
    recorder = Recorder()
    conversation = [
        *WELCOME,
        *CAPABILITIES,
        *request("smudge", "fail.bin", b"x" * (MAX_PAYLOAD * 2 + 3)),
        *request("clean", "ok.bin", b"next"),
    ]
    assert run(conversation, HANDLERS, recorder) == [*SERVER_HANDSHAKE, *ERROR, *success(b"NEXT")]
    [(command, pathname, exc)] = recorder.errors
    assert (command, pathname) == ("smudge", "fail.bin")
    assert isinstance(exc, MlxError)


def test_handler_failing_before_reading_its_content_keeps_the_stream_in_sync() -> None:
    def impatient(command: str, meta: dict[str, str], content: ContentReader) -> Body:
        content.read(3)  # reads a little, then fails: the rest must be drained
        raise MlxError("nope")

    conversation = [
        *WELCOME,
        *CAPABILITIES,
        *request("clean", "a.bin", b"y" * (MAX_PAYLOAD + 10)),
        *request("smudge", "b.bin", b"abc"),
    ]
    out = run(conversation, {"clean": impatient, "smudge": reverse_smudge})
    assert out == [*SERVER_HANDSHAKE, *ERROR, *success(b"cba")]


def test_handler_that_leaves_content_unread_still_keeps_the_stream_in_sync() -> None:
    def lazy(command: str, meta: dict[str, str], content: ContentReader) -> Body:
        return lambda sink: sink.write(b"fixed")

    conversation = [*WELCOME, *CAPABILITIES, *request("clean", "a", b"ignored" * 20000), *request("clean", "b", b"")]
    assert run(conversation, {"clean": lazy}) == [*CLEAN_ONLY_HANDSHAKE, *success(b"fixed"), *success(b"fixed")]


def test_body_failing_mid_content_sends_flush_then_status_error() -> None:
    recorder = Recorder()
    conversation = [
        *WELCOME,
        *CAPABILITIES,
        *request("smudge", "half.bin", b"data"),
        *request("smudge", "next.bin", b"abc"),
    ]
    assert run(conversation, HANDLERS, recorder) == [
        *SERVER_HANDSHAKE,
        b"status=success\n",
        None,
        b"partial",
        None,
        b"status=error\n",
        None,
        *success(b"cba"),
    ]
    assert [(c, p) for c, p, _ in recorder.errors] == [("smudge", "half.bin")]


def test_unsupported_command_is_a_per_file_error() -> None:
    recorder = Recorder()
    conversation = [*WELCOME, *CAPABILITIES, *request("frobnicate", "a.bin", b"abc"), *request("clean", "b", b"ok")]
    assert run(conversation, {"clean": upper_clean}, recorder) == [*CLEAN_ONLY_HANDSHAKE, *ERROR, *success(b"OK")]
    assert isinstance(recorder.errors[0][2], HandshakeError)


def test_non_mlx_exception_in_handler_is_also_a_per_file_error() -> None:
    def buggy(command: str, meta: dict[str, str], content: ContentReader) -> Body:
        raise KeyError("bug")

    conversation = [*WELCOME, *CAPABILITIES, *request("clean", "a", b"abc"), *request("smudge", "b", b"xyz")]
    out = run(conversation, {"clean": buggy, "smudge": reverse_smudge})
    assert out == [*SERVER_HANDSHAKE, *ERROR, *success(b"zyx")]


def test_never_answers_status_abort() -> None:
    conversation = [
        *WELCOME,
        *CAPABILITIES,
        *request("smudge", "fail.bin", b"a"),
        *request("smudge", "half.bin", b"b"),
        *request("nope", "c", b"c"),
    ]
    assert b"status=abort\n" not in run(conversation, HANDLERS)


# --- git going away, or breaking the framing, mid-file --------------------------------


def cut(conversation: list[bytes | None], drop: int) -> bytes:
    return encode(conversation)[:-drop]


# 200,000 bytes of content: 3 full packets and one of 3,452 bytes, then the flush.
@pytest.mark.parametrize("drop", [2, 6, 4 + 3456])  # inside the flush's header, inside a packet, at a boundary
def test_git_going_away_mid_file_ends_the_loop_without_reporting_the_file(drop: int) -> None:
    """git killed while the filter reads a file (docs/threat-model.md): nobody waits for
    an answer, so no error is reported and nothing more is written."""
    recorder = Recorder()
    conversation = [*WELCOME, *CAPABILITIES, *request("clean", "a", b"first"), *request("clean", "big", b"x" * 200000)]
    out = io.BytesIO()
    agreed = serve(io.BytesIO(cut(conversation, drop)), out, {"clean": upper_clean}, recorder.on_error)
    assert agreed == {"clean"} and recorder.errors == []
    assert decode(out.getvalue()) == [*CLEAN_ONLY_HANDSHAKE, *success(b"FIRST")]


def test_a_handler_that_swallows_the_truncation_still_gets_no_answer_sent() -> None:
    def forgiving(command: str, meta: dict[str, str], content: ContentReader) -> Body:
        try:
            content.read()
        except MlxError:
            pass
        return lambda sink: sink.write(b"made up")

    recorder = Recorder()
    conversation = [*WELCOME, *CAPABILITIES, *request("clean", "big", b"x" * 100000)]
    out = io.BytesIO()
    serve(io.BytesIO(cut(conversation, 10)), out, {"clean": forgiving}, recorder.on_error)
    assert decode(out.getvalue()) == CLEAN_ONLY_HANDSHAKE and recorder.errors == []


def test_git_going_away_mid_request_or_handshake_ends_the_loop_quietly() -> None:
    for data in (encode(WELCOME)[:-3], encode([*WELCOME, *CAPABILITIES, b"command=clean\n"])[:-2]):
        assert serve(io.BytesIO(data), io.BytesIO(), HANDLERS, Recorder().on_error) in (set(), {"clean", "smudge"})


def test_a_malformed_packet_inside_content_stops_the_loop_with_a_packet_error() -> None:
    recorder = Recorder()
    data = encode([*WELCOME, *CAPABILITIES, b"command=clean\n", b"pathname=a\n", None, b"abc"]) + b"zzzz0000"
    data += encode(request("clean", "b", b"never answered: out of sync"))
    out = io.BytesIO()
    with pytest.raises(PacketError) as raised:
        serve(io.BytesIO(data), out, {"clean": upper_clean}, recorder.on_error)
    assert not isinstance(raised.value, TruncatedPacket) and isinstance(raised.value, MlxError)
    assert recorder.errors == [] and decode(out.getvalue()) == CLEAN_ONLY_HANDSHAKE


def test_git_closing_its_end_while_we_answer_ends_the_loop_without_reporting_the_file() -> None:
    class ClosedAfterHandshake(io.BytesIO):
        answering = False

        def write(self, data) -> int:
            if self.answering and len(data) > 100:
                raise BrokenPipeError(32, "Broken pipe")
            return super().write(data)

    def clean(command: str, meta: dict[str, str], content: ContentReader) -> Body:
        content.read()
        out.answering = True
        return lambda sink: sink.write(b"y" * 1000)

    recorder = Recorder()
    out = ClosedAfterHandshake()
    conversation = [*WELCOME, *CAPABILITIES, *request("clean", "a", b"x"), *request("clean", "b", b"x")]
    serve(io.BytesIO(encode(conversation)), out, {"clean": clean}, recorder.on_error)
    assert recorder.errors == []


# --- with the real clean and smudge --------------------------------------------------


def test_conversation_with_real_filters(tmp_path: Path) -> None:
    store = Store(tmp_path / "mlx")
    content = b"weights " * 10000
    oid = hashlib.sha256(content).hexdigest()
    pointer = f"version https://gitmlx.dev/spec/v1\noid sha256:{oid}\nsize {len(content)}\n".encode()

    def clean(command: str, meta: dict[str, str], source: ContentReader) -> Body:
        text = filters.clean(source, store)
        return lambda sink: sink.write(text)

    def smudge(command: str, meta: dict[str, str], source: ContentReader) -> Body:
        def fetch(p: object) -> None:
            raise MlxError("no remote configured")

        return filters.prepare_smudge(source, store, fetch, meta["pathname"])

    missing = f"version https://gitmlx.dev/spec/v1\noid sha256:{'0' * 64}\nsize 3\n".encode()
    conversation = [
        *WELCOME,
        *CAPABILITIES,
        *request("clean", "model.bin", content),
        *request("smudge", "gone.bin", missing),
        *request("smudge", "model.bin", pointer),
        *request("smudge", "README", b"plain text\n"),
    ]
    out = run(conversation, {"clean": clean, "smudge": smudge})
    assert out == [*SERVER_HANDSHAKE, *success(pointer), *ERROR, *success(content), *success(b"plain text\n")]
