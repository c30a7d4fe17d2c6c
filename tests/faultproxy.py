"""A TCP proxy on 127.0.0.1 that injects S3 faults between a client and a test server.

Owns: forwarding HTTP/1.1 exchanges one per connection (it rewrites `Connection: close`
both ways, so every request gets its own connection and no request is lost to a reused,
half-dead one), and, drawn from a seeded RNG per request: answering `503 SlowDown` without
forwarding, or cutting the connection halfway through the response body. It counts what
it did in `stats`.
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
        _shutdown(self._listener)  # wakes accept()
        self._acceptor.join()
        self._listener.close()
        for sock in sockets:
            _shutdown(sock)  # wakes recv() in the connection threads
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
        _shutdown(sock)
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
            head = _read_head(reader)
            if head is None:
                return
            method = head[0].split(b" ", 1)[0]
            fault, cut_at = self._draw()
            if fault == "slowdown":
                self._answer_slowdown(client, reader, method)
                return
            upstream = socket.create_connection(self.upstream)
            if not self._track(upstream):
                return
            upstream.sendall(_with_close(head))
            # The request body (if any) flows on its own; the response comes back here.
            self._spawn(_pump, reader, upstream)
            up_reader = upstream.makefile("rb")
            while True:
                response = _read_head(up_reader)
                if response is None:
                    return
                status = int(response[0].split(b" ")[1])
                if status >= 200:
                    break
                client.sendall(b"".join(response))  # 100 Continue: pass it on as-is
            client.sendall(_with_close(response))
            length = _content_length(response)
            has_body = method != b"HEAD" and status not in (204, 304)
            # A cut sends part of the body: none at all when cut_at is 0, else at least
            # one byte and never the last one (a 1-byte body cannot be cut in the middle).
            keep = max(int(length * cut_at), 1 if cut_at else 0) if length else 0
            if fault == "cut" and has_body and length and keep < length:
                with self._lock:
                    self.stats.cuts += 1
                client.sendall(_read_exactly(up_reader, keep))
                return  # the finally below drops both connections mid-body
            _pump(up_reader, client)
            with self._lock:
                self.stats.forwarded += 1
        except OSError:
            pass  # a peer went away, or stop() shut the sockets down
        finally:
            if upstream is not None:
                self._release(upstream)
            self._release(client)

    def _answer_slowdown(self, client: socket.socket, reader: BinaryIO, method: bytes) -> None:
        body = b"" if method == b"HEAD" else _SLOWDOWN_BODY
        with self._lock:
            self.stats.slowdowns += 1
        client.sendall(
            b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(_SLOWDOWN_BODY) + body
        )
        # Swallow whatever body the client still sends, until it closes: closing with
        # unread data would reset the connection before the client reads the 503.
        while reader.read1(65536):
            pass


def _read_head(reader: BinaryIO) -> list[bytes] | None:
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


def _with_close(head: list[bytes]) -> bytes:
    """The head with `Connection: close` instead of any keep-alive headers."""
    kept = [line for line in head[1:-1] if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")]
    return b"".join([head[0], *kept, b"Connection: close\r\n", head[-1]])


def _content_length(head: list[bytes]) -> int | None:
    for line in head[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return None


def _read_exactly(reader: BinaryIO, size: int) -> bytes:
    data = reader.read(size)
    if len(data) != size:
        raise OSError("upstream closed early")
    return data


def _pump(reader: BinaryIO, sock: socket.socket) -> None:
    try:
        while data := reader.read1(65536):
            sock.sendall(data)
    except OSError:
        pass


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
