"""git's long-running filter protocol, version 2 (gitattributes(5), "Long Running
Filter Process").

Owns: the handshake, capability negotiation and the per-file request/response framing.
Must not: know what clean or smudge do; it calls the handler it is given, so the same
code serves the one-shot `clean`/`smudge` commands and this loop.

Per file, the handler consumes the whole input first (git writes all of it before it
reads anything back, so answering early could deadlock on full pipes), and does every
step that can fail *before* `status=success` is sent. A failure then becomes
`status=error` for that one file. Never `status=abort`: git would stop using the filter
for the rest of the command without a word.

When git goes away (killed mid-file, its end of the pipes closed), nobody waits for an
answer: the loop ends as it does when git closes the pipe between files, without
reporting the file (docs/threat-model.md). A malformed stream from a live git ends it
with PacketError, an expected failure, since no later answer could be in sync.
"""

from __future__ import annotations

from collections.abc import Callable

from gitmlx.errors import MlxError
from gitmlx.git import pktline
from gitmlx.git.pktline import ContentReader, ContentWriter, TruncatedPacket

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from typing import BinaryIO

#: Writes the reply's content; may raise, which turns into a trailing status=error.
Body = Callable[[ContentWriter], None]
#: (command, request metadata, content) → the body of a successful reply.
Handler = Callable[[str, dict[str, str], ContentReader], Body]
#: Told about each failure: (command, pathname, exception). Must not raise.
ErrorReporter = Callable[[str, str, BaseException], None]
#: For the "delay" capability: block until at least one delayed path is ready and return
#: the ready ones; an empty list once nothing is delayed any more.
ListAvailable = Callable[[], list[str]]


class _Delayed:
    """A handler's answer meaning "not now": git asks again after list_available_blobs."""


#: Return this from a smudge handler (only when the request says can-delay=1).
DELAYED: Body = _Delayed()  # type: ignore[assignment]


class HandshakeError(MlxError):
    """git asked for something this filter does not speak (a version, a command)."""


def handshake(inp: BinaryIO, out: BinaryIO, capabilities: tuple[str, ...]) -> set[str]:
    """Negotiate version 2 and the capabilities both sides have; return those."""
    welcome = pktline.read_text_list(inp)
    if not welcome or welcome[0] != "git-filter-client" or "version=2" not in welcome[1:]:
        raise HandshakeError(f"unexpected filter handshake {welcome!r}")
    pktline.write_text(out, "git-filter-server")
    pktline.write_text(out, "version=2")
    pktline.write_flush(out)
    out.flush()  # git waits for our version before it sends its capabilities
    offered = {line.removeprefix("capability=") for line in pktline.read_text_list(inp)}
    agreed = [c for c in capabilities if c in offered]
    for capability in agreed:
        pktline.write_text(out, f"capability={capability}")
    pktline.write_flush(out)
    out.flush()
    return set(agreed)


def serve(
    inp: BinaryIO,
    out: BinaryIO,
    handlers: dict[str, Handler],
    on_error: ErrorReporter,
    list_available: ListAvailable | None = None,
    idle: Callable[[], None] | None = None,
) -> set[str]:
    """Answer requests until git closes the pipe; returns the agreed capabilities.

    With `list_available`, the "delay" capability is offered: a smudge handler may return
    DELAYED for a request carrying `can-delay=1`; git later sends `list_available_blobs`
    and then asks again for each listed path, with empty content. `idle` is called after
    each answer has gone out, while git works on it.
    """
    offered = (*handlers, "delay") if list_available is not None else tuple(handlers)
    try:
        agreed = handshake(inp, out, offered)
    except (EOFError, TruncatedPacket):
        return set()
    while True:
        try:
            request = pktline.read_key_values(inp)
        except (EOFError, TruncatedPacket):  # closed between files, or went away mid-request
            return agreed
        command = request.get("command", "")
        pathname = request.get("pathname", "")
        if command == "list_available_blobs" and list_available is not None:
            # No content section follows this command (gitattributes(5), "Delay").
            for ready in list_available():
                pktline.write_text(out, f"pathname={ready}")
            pktline.write_flush(out)
            _status(out, "success")
            continue
        content = ContentReader(inp)
        handler = handlers.get(command)
        failure: Exception | None = None
        try:
            if handler is None:
                raise HandshakeError(f"unsupported filter command {command!r}")
            body = handler(command, request, content)
        except Exception as exc:  # noqa: BLE001 - any failure is this file's failure
            failure = exc
        try:
            content.drain()
        except pktline.PacketError:
            pass  # kept in content.broken
        if content.broken is not None:
            # Whatever the handler made of it, the stream broke inside this file's content.
            if isinstance(content.broken, TruncatedPacket):
                return agreed
            raise content.broken
        if failure is not None:
            on_error(command, pathname, failure)
            _status(out, "error")
            continue
        if body is DELAYED:
            _status(out, "delayed")
            continue
        # The status goes out with the content, in one write: a small file's whole answer
        # then wakes git once, not twice (git reads the status list, then the content).
        _status(out, "success", flush=False)
        writer = ContentWriter(out)
        try:
            body(writer)
        except Exception as exc:  # noqa: BLE001
            if writer.failed is not None:
                return agreed  # git closed its end while we answered: nobody to tell
            pktline.write_flush(out)
            on_error(command, pathname, exc)
            _status(out, "error")
            continue
        pktline.write_flush(out)
        pktline.write_flush(out)  # empty list: keep status=success
        out.flush()
        if idle is not None:
            idle()


def _status(out: BinaryIO, status: str, flush: bool = True) -> None:
    pktline.write_text(out, f"status={status}")
    pktline.write_flush(out)
    if flush:
        out.flush()
