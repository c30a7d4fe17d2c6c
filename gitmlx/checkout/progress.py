"""What a checkout has restored so far, for the filter's progress display.

git's filter protocol never says how many files a checkout will ask for, so the total
grows as git's requests come: each smudge request of a checkout (`can-delay`) for an
object this process restores adds that object (once, however many files name it). git
sends a checkout's requests quickly (each is answered with a pointer at once, or told to
come back later) while the downloads take the time, so the total settles early in a
clone or a large checkout. An object already in the local store counts as done when it is
asked for; a downloaded one moves the byte count as its bytes arrive and counts as done
when it is in the store. The copy into the work tree is not counted: it is a kernel copy
from the store, a small part of the time.

Owns: the counts, under a lock (download threads report bytes).
Must not: print; it tells the `Display` it is given (ui's, injected by the filter command).
"""

from __future__ import annotations

import threading

from gitmlx.format.pointer import Pointer

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the filter process must not import typing
if TYPE_CHECKING:
    from typing import Protocol

    class Display(Protocol):
        def update(self, files_done: int, files_total: int, bytes_done: int, bytes_total: int) -> None: ...

        def close(self) -> None: ...


class CheckoutProgress:
    """Objects asked for (`want`), bytes arrived (`moved`) and downloads ended (`fetched`).

    A clone's fetch-ahead downloads objects before git asks for them: their bytes and
    their end are remembered per object and counted once git asks."""

    def __init__(self, display: Display) -> None:
        self._display = display
        self._lock = threading.Lock()
        self._wanted: set[str] = set()
        self._partial: dict[str, int] = {}
        self._ended: set[str] = set()
        self.files_total = self.files_done = self.bytes_total = self.bytes_done = 0

    def want(self, pointer: Pointer, stored: bool) -> None:
        """git asked for `pointer`'s object; `stored`: it is in the local store already."""
        oid = pointer.oid
        with self._lock:
            if oid in self._wanted:
                return
            self._wanted.add(oid)
            self.files_total += 1
            self.bytes_total += pointer.size
            if stored or oid in self._ended:
                self._ended.add(oid)
                self.files_done += 1
                self.bytes_done += pointer.size
            else:
                self.bytes_done += self._partial.get(oid, 0)
            self._show()

    def moved(self, pointer: Pointer, n: int) -> None:
        """`n` more bytes of `pointer`'s download arrived (from a download thread)."""
        oid = pointer.oid
        with self._lock:
            if oid in self._ended:
                return
            n = min(n, pointer.size - self._partial.get(oid, 0))
            self._partial[oid] = self._partial.get(oid, 0) + n
            if oid in self._wanted:
                self.bytes_done += n
                self._show()

    def fetched(self, pointer: Pointer) -> None:
        """`pointer`'s download ended (in the store, or failed: nothing more will come)."""
        oid = pointer.oid
        with self._lock:
            if oid in self._ended:
                return
            self._ended.add(oid)
            if oid in self._wanted:
                self.files_done += 1
                self.bytes_done += pointer.size - self._partial.get(oid, 0)
                self._show()

    def finish(self) -> None:
        """The checkout ended: the display closes; the next checkout starts from zero."""
        with self._lock:
            self._display.close()
            self._wanted.clear()
            self._partial.clear()
            self._ended.clear()
            self.files_total = self.files_done = self.bytes_total = self.bytes_done = 0

    def _show(self) -> None:
        """Under the lock: the display hears one thread at a time, counts in order."""
        self._display.update(self.files_done, self.files_total, self.bytes_done, self.bytes_total)
