"""An S3 fault proxy with more faults than tests/support/faultproxy.py's 503s and cut bodies.

Owns: per request (drawn from a seeded RNG, for the methods asked): answering `500
InternalError` or `503 SlowDown` without forwarding; resetting the connection (RST)
halfway through the response body; ending it cleanly (FIN) halfway through; sending a
Content-Length larger than the body; sending a Content-Length smaller than the body (and
only that many bytes: a response that looks complete and is short); flipping bytes in the
middle of the body (same length). It counts each fault it injected.
Must not: listen beyond 127.0.0.1 (FaultProxy's listener), or outlive `stop()`.
"""

from __future__ import annotations

import socket
import struct
from collections import Counter

from tests.support.faultproxy import (
    FaultProxy,
    answer_error,
    content_length,
    pump,
    read_exactly,
    read_final_response,
    read_head,
    with_close,
)

_INTERNAL_ERROR = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error. Please try again.</Message>"
    b"<RequestId>http_faults</RequestId></Error>"
)
MODES = ("500", "503", "reset", "truncate", "long-length", "short-length", "flip")
#: Faults a client can recover from by retrying or resuming; the others it can only detect.
RECOVERABLE = ("500", "503", "reset", "truncate", "long-length")


class HttpFaultProxy(FaultProxy):
    def __init__(self, upstream: tuple[str, int], *, seed: int = 0) -> None:
        super().__init__(upstream, seed=seed)
        self.mode: tuple[str, ...] | None = None
        self.fraction: float | None = None
        self._seen: set[tuple[bytes, bytes]] = set()
        self.methods: tuple[bytes, ...] = (b"GET",)
        self.injected: Counter[str] = Counter()

    def set_fault(
        self,
        mode: str | tuple[str, ...] | None,
        fraction: float | None = None,
        methods: tuple[str, ...] = ("GET",),
    ) -> None:
        """Inject `mode` (or one of several, drawn each time) into requests with these
        methods: a `fraction` of them, or (None) the first request for each object only, so
        every object meets the fault once and its retry or resumed read gets through.
        `set_fault(None)` stops injecting."""
        modes = () if mode is None else (mode,) if isinstance(mode, str) else mode
        assert all(m in MODES for m in modes), modes
        with self._lock:
            self.mode, self.fraction = modes or None, fraction
            self.methods = tuple(m.encode() for m in methods)
            self._seen = set()

    def _pick(self, method: bytes, target: bytes) -> str | None:
        with self._lock:
            self.stats.requests += 1
            if self.mode is None or method not in self.methods:
                return None
            if self.fraction is None:
                key = (method, target.split(b"?", 1)[0])
                if key in self._seen:
                    return None
                self._seen.add(key)
            elif self._rng.random() >= self.fraction:
                return None
            return self._rng.choice(self.mode)

    def _serve(self, client: socket.socket) -> None:  # noqa: C901 - one branch per fault
        upstream: socket.socket | None = None
        reader = pump_thread = None
        reset = False
        try:
            reader = client.makefile("rb")
            head = read_head(reader)
            if head is None:
                return
            method, target = (head[0].split(b" ") + [b"", b""])[:2]
            fault = self._pick(method, target)
            if fault == "503":
                self.injected[fault] += 1
                self._answer_slowdown(client, reader, method)
                return
            if fault == "500":
                self.injected[fault] += 1
                answer_error(client, reader, method, b"500 Internal Server Error", _INTERNAL_ERROR)
                return
            upstream = self._connect(head)
            if upstream is None:
                return
            pump_thread = self._spawn(pump, reader, upstream)
            up_reader = upstream.makefile("rb")
            answer = read_final_response(up_reader, client)
            if answer is None:
                return
            response, status = answer
            length = content_length(response) or 0
            has_body = method != b"HEAD" and status in (200, 206)
            if fault is None or not has_body or length < 2:
                client.sendall(with_close(response))
                pump(up_reader, client)
                with self._lock:
                    self.stats.forwarded += 1
                return
            self.injected[fault] += 1
            half = length // 2
            if fault in ("reset", "truncate"):
                client.sendall(with_close(response))
                client.sendall(read_exactly(up_reader, half))
                reset = fault == "reset"
            elif fault == "long-length":
                client.sendall(_with_length(response, length + 1000))
                pump(up_reader, client)
            elif fault == "short-length":
                client.sendall(_with_length(response, half))
                client.sendall(read_exactly(up_reader, half))
            elif fault == "flip":
                client.sendall(with_close(response))
                body = bytearray(read_exactly(up_reader, length))
                for i in range(half, min(half + 16, length)):
                    body[i] ^= 0xFF
                client.sendall(bytes(body))
        except OSError:
            pass
        finally:
            if upstream is not None:
                self._release(upstream)
            if reset:
                self._reset(client, reader, pump_thread)
            else:
                self._release(client)

    def _reset(self, client: socket.socket, reader: object, pump: object) -> None:
        """Close with RST. The socket's fd closes only once its makefile readers are closed
        too, so wake the request pump (SHUT_RD sends nothing), wait for it, close them all."""
        with self._lock:
            self._sockets.discard(client)
        try:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        if pump is not None:
            pump.join(timeout=5)
        if reader is not None:
            reader.close()
        client.close()


def _with_length(head: list[bytes], length: int) -> bytes:
    lines = [line for line in head[1:-1] if line.split(b":", 1)[0].strip().lower() != b"content-length"]
    return with_close([head[0], *lines, b"Content-Length: %d\r\n" % length, head[-1]])
