"""A TCP proxy on 127.0.0.1 that injects S3 faults between a client and a test server.

Owns: forwarding HTTP/1.1 exchanges one per connection (it rewrites `Connection: close`
both ways, so every request gets its own connection and no request is lost to a reused,
half-dead one), and, drawn from a seeded RNG per request: answering `503 SlowDown` without
forwarding, or cutting the connection halfway through the response body (`FaultProxy`) or
through an upload's request body (`DroppingProxy`). It counts what it did in `stats`. The
HTTP/1.1 framing functions at the end are public for the proxies built on this one
(tests/support/http_faults.py).
Must not: listen beyond 127.0.0.1, sleep, or outlive `stop()` (every socket is shut down,
which wakes any thread blocked on it, and every thread is joined).
"""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

_SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message>"
    b"<RequestId>faultproxy</RequestId></Error>"
)
_MAX_HEAD = 64 * 1024


@dataclass
class FaultStats:
    """What the proxy did; `slowdowns` and `cuts` count before the client can see them."""

    requests: int = 0
    forwarded: int = 0
    slowdowns: int = 0
    cuts: int = 0
    #: Bytes of the response bodies forwarded whole: what the clients downloaded.
    body_bytes: int = 0


class FaultProxy:
    """`with FaultProxy(("127.0.0.1", port), cut_fraction=0.3, seed=1) as proxy: proxy.url`."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        cut_fraction: float = 0.0,
        slowdown_fraction: float = 0.0,
        cut_at: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.upstream = upstream
        self.stats = FaultStats()
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._cut, self._slowdown, self._cut_at = cut_fraction, slowdown_fraction, cut_at
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._stopping = False
        self._acceptor = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)

    def configure(self, *, cut_fraction: float = 0.0, slowdown_fraction: float = 0.0, cut_at: float = 0.5) -> None:
        """Change the faults for the requests that arrive from now on.

        A cut response delivers `cut_at` of its body (0.0: none, 0.5: half) and then the
        connection drops; a slowdown is answered 503 without reaching the server.
        """
        with self._lock:
            self._cut, self._slowdown, self._cut_at = cut_fraction, slowdown_fraction, cut_at

    def start(self) -> FaultProxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            sockets, threads = list(self._sockets), list(self._threads)
        shutdown(self._listener)  # wakes accept()
        self._acceptor.join()
        self._listener.close()
        for sock in sockets:
            shutdown(sock)  # wakes recv() in the connection threads
        for thread in threads:
            thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals ------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], *args: object) -> threading.Thread | None:
        thread = threading.Thread(target=self._run, args=(target, *args), daemon=True)
        with self._lock:
            if self._stopping:
                return None
            self._threads.add(thread)
        thread.start()
        return thread

    def _run(self, target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._stopping:
                sock.close()
                return False
            self._sockets.add(sock)
            return True

    def _release(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        shutdown(sock)
        sock.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # the listener was shut down
            if not self._track(client) or not self._spawn(self._serve, client):
                self._release(client)

    def _draw(self) -> tuple[str, float]:
        with self._lock:
            self.stats.requests += 1
            roll = self._rng.random()
            if roll < self._slowdown:
                return "slowdown", 0.0
            if roll < self._slowdown + self._cut:
                return "cut", self._cut_at
            return "forward", 0.0

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            reader = client.makefile("rb")
            head = read_head(reader)
            if head is None:
                return
            method = head[0].split(b" ", 1)[0]
            fault, cut_at = self._draw()
            if fault == "slowdown":
                self._answer_slowdown(client, reader, method)
                return
            upstream = self._connect(head)
            if upstream is None:
                return
            request_cut = self._send_request_body(fault, head, reader, upstream, client)
            up_reader = upstream.makefile("rb")
            answer = read_final_response(up_reader, client)
            if answer is None or request_cut:
                return  # a cut request: the server may answer before the whole body came; drop it anyway
            response, status = answer
            client.sendall(with_close(response))
            length = content_length(response)
            has_body = method != b"HEAD" and status not in (204, 304)
            # A cut sends part of the body: none at all when cut_at is 0, else at least
            # one byte and never the last one (a 1-byte body cannot be cut in the middle).
            keep = max(int(length * cut_at), 1 if cut_at else 0) if length else 0
            if fault == "cut" and has_body and length and keep < length:
                with self._lock:
                    self.stats.cuts += 1
                client.sendall(read_exactly(up_reader, keep))
                return  # the finally below drops both connections mid-body
            pump(up_reader, client)
            with self._lock:
                self.stats.forwarded += 1
                self.stats.body_bytes += length if has_body and length else 0
        except OSError:
            pass  # a peer went away, or stop() shut the sockets down
        finally:
            if upstream is not None:
                self._release(upstream)
            self._release(client)

    def _connect(self, head: list[bytes]) -> socket.socket | None:
        """A tracked connection to the server with the request head sent (keep-alive
        turned into close); None when the proxy is stopping."""
        upstream = socket.create_connection(self.upstream)
        if not self._track(upstream):
            return None
        upstream.sendall(with_close(head))
        return upstream

    def _send_request_body(
        self, fault: str, head: list[bytes], reader: BinaryIO, upstream: socket.socket, client: socket.socket
    ) -> bool:
        """Start passing the request body (if any) on, on its own thread, while the response
        comes back on this one. True when the request was cut (never, here)."""
        self._spawn(pump, reader, upstream)
        return False

    def _answer_slowdown(self, client: socket.socket, reader: BinaryIO, method: bytes) -> None:
        with self._lock:
            self.stats.slowdowns += 1
        answer_error(client, reader, method, b"503 Slow Down", _SLOWDOWN_BODY)


def answer_error(client: socket.socket, reader: BinaryIO, method: bytes, status: bytes, body: bytes) -> None:
    """Answer with `status` (b"503 Slow Down") and an S3 XML error `body`, without forwarding."""
    client.sendall(
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/xml\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + (b"" if method == b"HEAD" else body)
    )
    # Swallow whatever body the client still sends, until it closes: closing with
    # unread data would reset the connection before the client reads the answer.
    while reader.read1(65536):
        pass


def read_head(reader: BinaryIO) -> list[bytes] | None:
    """The start line and header lines (CRLFs kept), or None at end of stream."""
    lines: list[bytes] = []
    total = 0
    while True:
        line = reader.readline(_MAX_HEAD)
        if not line:
            return None
        total += len(line)
        if total > _MAX_HEAD:
            raise OSError("header too long")
        lines.append(line)
        if line in (b"\r\n", b"\n") and len(lines) > 1:
            return lines


def read_final_response(up_reader: BinaryIO, client: socket.socket) -> tuple[list[bytes], int] | None:
    """The server's final response head and its status, passing any interim (1xx) response,
    such as 100 Continue, on to the client as it is; None when the server closed first."""
    while True:
        response = read_head(up_reader)
        if response is None:
            return None
        status = int(response[0].split(b" ")[1])
        if status >= 200:
            return response, status
        client.sendall(b"".join(response))


def with_close(head: list[bytes]) -> bytes:
    """The head with `Connection: close` instead of any keep-alive headers."""
    kept = [line for line in head[1:-1] if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")]
    return b"".join([head[0], *kept, b"Connection: close\r\n", head[-1]])


def content_length(head: list[bytes]) -> int | None:
    for line in head[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def read_exactly(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise OSError("upstream closed early")
    return data


def pump(reader: BinaryIO, sock: socket.socket) -> None:
    try:
        while data := reader.read1(65536):
            sock.sendall(data)
    except OSError:
        pass


def shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class DroppingProxy(FaultProxy):
    """`FaultProxy`, except that a request drawn to be cut that carries a body (a PUT of an
    object or part) is cut in the middle of that *request* body: half of it reaches the
    server, then both connections drop. `FaultProxy` alone can only cut response bodies,
    and an upload's response has none, so a push would never see a dropped connection."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.upload_cuts = 0

    def _send_request_body(
        self, fault: str, head: list[bytes], reader: BinaryIO, upstream: socket.socket, client: socket.socket
    ) -> bool:
        body_length = content_length(head) or 0
        if fault != "cut" or body_length <= 1:
            return super()._send_request_body(fault, head, reader, upstream, client)
        with self._lock:
            self.stats.cuts += 1
            self.upload_cuts += 1
        self._spawn(_pump_some_then_drop, reader, upstream, client, body_length // 2)
        return True


def _pump_some_then_drop(reader: BinaryIO, upstream: socket.socket, client: socket.socket, limit: int) -> None:
    """Forward `limit` bytes of the request body, then shut both connections down."""
    try:
        left = limit
        while left > 0:
            data = reader.read1(min(left, 65536))
            if not data:
                break
            upstream.sendall(data)
            left -= len(data)
    except OSError:
        pass
    finally:
        for sock in (client, upstream):
            shutdown(sock)
