"""The remote interface: a dumb blob backend that knows nothing of git or oids.

Owns: the `Remote` protocol every backend implements, and the options they take.
Must not: decide how objects are named (that is `gitmlx.format.layout`), or import a backend's
client library (each backend module owns its own).

Keys are relative, `/`-separated names made only by `gitmlx.format.layout`; a backend must still
refuse a key with an empty, `.` or `..` part, so no key can name a place outside it.
Every `put_file` is atomic: a reader sees the whole object or no object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gitmlx.errors import RemoteError

#: Called with a number of bytes just moved; lets the CLI drive a progress bar.
ProgressCallback = Callable[[int], None]


class Sink(Protocol):
    def write(self, data: bytes | memoryview, /) -> object: ...


@dataclass(frozen=True)
class RemoteOptions:
    """Backend settings resolved from configuration (credentials are never here)."""

    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str | None = None
    concurrency: int = 8
    #: Where a backend may keep what it needs to resume an interrupted upload (a folder
    #: under the local store; S3: multipart journals). None: uploads are not resumed.
    upload_journals: Path | None = None
    #: Multipart part size (and threshold) in bytes, for backends that have parts; None: theirs.
    part_size: int | None = None


@dataclass(frozen=True)
class RemoteEntry:
    key: str
    size: int


class Remote(Protocol):
    #: The remote's URL with any credentials removed: safe to print.
    display_url: str
    #: Whether writing a local file to the remote costs no network (a directory remote):
    #: a pusher may then start copying a large object before it knows it needs to.
    copies_are_local: bool
    #: What tells this remote apart in the chunk index: the URL, and for S3 the endpoint
    #: (the same bucket name on two endpoints is two remotes).
    identity: str

    def exists(self, key: str) -> bool:
        """True when an object is stored under `key`."""

    def size(self, key: str) -> int | None:
        """The stored object's size in bytes, or None when there is none."""

    def put_file(self, key: str, path: Path, progress: ProgressCallback | None = None, consume: bool = False) -> None:
        """Store the file at `path` under `key`, atomically.

        With `consume`, the caller no longer needs `path`: a backend may move the file
        instead of copying it (a directory remote on the same file system does).
        """

    def staging_path(self) -> Path | None:
        """A new file name on the remote's own file system, for a file the caller builds
        and then hands to `put_file` with `consume` (renamed in: no second write and read
        of its bytes); None when the backend has no such place (the caller builds the file
        in a local temporary folder). The name is not yet taken; its folder exists."""

    def get(
        self,
        key: str,
        sink: Sink,
        offset: int = 0,
        progress: ProgressCallback | None = None,
        length: int | None = None,
    ) -> None:
        """Stream the object under `key` from byte `offset` (at most `length` bytes) into `sink`."""

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Bytes `start` to `start + length` of the object (fewer only at its end)."""

    def list(self, prefix: str = "") -> Iterator[RemoteEntry]:
        """Every object whose key starts with `prefix`, in no particular order."""

    def delete(self, key: str) -> None:
        """Remove the object under `key`; a missing object is not an error."""

    def abort_stale_uploads(self, started_before: float) -> int:
        """Abort uploads under this remote's prefix left unfinished since before
        `started_before` (Unix seconds): a killed push's multipart uploads. How many."""


def check_key(key: str) -> str:
    """Refuse keys that could escape the backend's root; return the key unchanged."""
    parts = key.split("/")
    if not key or any(part in ("", ".", "..") for part in parts) or "\\" in key or "\0" in key:
        raise RemoteError(f"refusing unsafe remote key {key!r}")
    return key
