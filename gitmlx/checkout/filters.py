"""clean and smudge: the one implementation behind both the one-shot filters and the
long-running filter process.

Owns: turning content into a pointer (clean) and a pointer back into verified content
(smudge), given a store and a way to fetch a missing object.
Must not: frame packets, print, or touch the network itself (smudge calls `fetch`).

Invariants (docs/design.md): clean streams into the store while hashing and only then
returns the pointer; it never touches the network. Smudge never lets bytes that failed
verification through silently: a mismatch raises after the last block, so the caller
reports failure and git discards what it received.
"""

from __future__ import annotations

from collections.abc import Callable, Container

from gitmlx.errors import IntegrityError, MlxError
from gitmlx.format import pointer as pointers
from gitmlx.format.pointer import MAX_POINTER_SIZE, Pointer
from gitmlx.store.objects import BLOCK_SIZE, Store

#: Asked to bring a missing object into the store (or raise an MlxError saying why not).
Fetcher = Callable[[Pointer], None]
#: Told that an object could not be fetched; the pointer text is then checked out instead.
Unavailable = Callable[[Pointer, MlxError], None]
#: Non-pointer content passing through smudge stays in memory up to this size.
SPOOL_IN_MEMORY = 8 * 1024 * 1024

TYPE_CHECKING = False  # type checkers take it as True; typing stays off the filter's start-up
if TYPE_CHECKING:
    from typing import BinaryIO, Protocol

    class Source(Protocol):
        def read(self, n: int = -1, /) -> bytes: ...

    class Sink(Protocol):
        def write(self, data: bytes | memoryview, /) -> object: ...


def read_head(source: Source, limit: int = MAX_POINTER_SIZE) -> bytes:
    """Up to `limit` bytes: enough to tell whether content is a pointer."""
    parts = []
    got = 0
    while got < limit and (block := source.read(limit - got)):
        parts.append(block)
        got += len(block)
    return b"".join(parts)


class Prefixed:
    """A source that yields `head` first, then the rest of `source` (after a peek)."""

    def __init__(self, head: bytes, source: Source) -> None:
        self._head = head
        self._source = source

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                data, self._head = self._head, b""
            else:
                data, self._head = self._head[:n], self._head[n:]
            return data
        return self._source.read(n)


def clean(
    source: Source,
    store: Store,
    known: bytes | None = None,
    path: str = "",
    warn: Callable[[str], None] | None = None,
    stored: Callable[[bytes, Pointer], None] | None = None,
) -> bytes:
    """Store the content read from `source`; return the pointer text for git.

    Pointer text in gives the same pointer text out (idempotent, §6.2), so re-adding a
    file checked out without its content never replaces the pointer with a pointer to it.

    `known` is the pointer text git's index holds for this path. When its object is in
    the store, the content is first compared with it byte for byte (no hashing, no
    writing): a `git status` after checkout then costs a read, not a re-hash. At the first
    difference the bytes already compared are taken from the store and cleaning goes on.
    Content that is a strict prefix of that object is most likely a file git was killed
    while writing (it writes checkouts in place): stored as asked, with a warning.
    `stored` is told the pointer text returned for content it stored (not for content
    that was a pointer, nor for the index's own pointer returned as it was).
    """
    head = read_head(source)
    if len(head) < MAX_POINTER_SIZE and pointers.parse(head) is not None:
        return head
    expected = pointers.parse(known) if known else None
    if expected is not None and store.has(expected.oid) and store.size(expected.oid) == expected.size:
        same, prefix_len, rest = _compare(Prefixed(head, source), store, expected)
        if same:
            return known  # type: ignore[return-value]
        if not rest and warn is not None:
            warn(
                f"'{path}' holds only the first {prefix_len} of the {expected.size} bytes git's index "
                f"has for it: cut short by a killed checkout? 'git checkout -- {path}' restores it "
                "(before it is added)"
            )
        with store.writer() as writer, store.open(expected.oid) as prefix:
            _copy(prefix, writer, prefix_len)
            writer.write(rest)
            while block := source.read(BLOCK_SIZE):
                writer.write(block)
            return _emitted(writer.commit(), stored)
    with store.writer() as writer:
        writer.write(head)
        while block := source.read(BLOCK_SIZE):
            writer.write(block)
        return _emitted(writer.commit(), stored)


def _emitted(pointer: Pointer, stored: Callable[[bytes, Pointer], None] | None) -> bytes:
    text = pointer.encode()
    if stored is not None:
        stored(text, pointer)
    return text


def clean_unchanged(source: Source, known: bytes, path: str) -> bytes:
    """Drain content the stat cache vouches for; check only its length, return `known`."""
    expected = pointers.parse(known)
    got = 0
    while block := source.read(BLOCK_SIZE):
        got += len(block)
    if expected is None or got != expected.size:
        raise MlxError(f"'{path}' changed while git was reading it", "run the command again")
    return known


def _compare(source: Source, store: Store, expected: Pointer) -> tuple[bool, int, bytes]:
    """Read `source` while it equals the stored object: (identical, bytes equal, first differing block)."""
    done = 0
    with store.open(expected.oid) as stored:
        while block := source.read(BLOCK_SIZE):
            if stored.read(len(block)) != block:
                return False, done, block
            done += len(block)
        return done == expected.size, done, b""


def holds_prefix(source: Source, store: Store, pointer: Pointer) -> bool:
    """Whether all `source` holds is the start of the stored object (or all of it)."""
    _, _, rest = _compare(source, store, pointer)
    return not rest


def _copy(src: BinaryIO, sink: Sink, n: int) -> None:
    while n > 0 and (block := src.read(min(BLOCK_SIZE, n))):
        sink.write(block)
        n -= len(block)


def prepare_smudge(
    source: Source,
    store: Store,
    fetch: Fetcher | None,
    path: str,
    warn: Callable[[str], None] | None = None,
    on_unavailable: Unavailable | None = None,
    verified: Container[str] = (),
) -> Callable[[Sink], None]:
    """Consume the blob from `source`; return a function that writes its content.

    Everything that can fail before the first byte (fetching, the size check) happens
    here, so the long-running filter can still answer `status=error` cleanly. A non-pointer
    blob passes through unchanged, spooled to disk past a few MiB to keep memory bounded.
    With `fetch=None` (smudge skipped, or the path excluded from fetching) a pointer
    passes through too. When fetching fails and `on_unavailable` is given, it is told and
    the pointer passes through: the work tree then holds exactly what git has (never
    wrong bytes), and the rest of the checkout goes on. Without it, the error propagates.
    Objects in `verified` (hashed by this process moments ago, as every download is)
    are streamed without hashing them a second time.
    """
    head = read_head(source)
    pointer = pointers.parse(head) if len(head) < MAX_POINTER_SIZE else None
    if pointer is not None and fetch is None:
        return lambda sink: sink.write(head)
    if pointer is None:
        if warn is not None and (message := check_pointer_like(head, path)):
            warn(message)
        import tempfile  # only content that is not a pointer needs it

        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        spool.write(head)
        while block := source.read(BLOCK_SIZE):
            spool.write(block)
        spool.seek(0)

        def passthrough(sink: Sink) -> None:
            with spool:
                while block := spool.read(BLOCK_SIZE):
                    sink.write(block)

        return passthrough
    error = check_stored_size(store, pointer, path)
    if error is not None:
        if on_unavailable is None:
            raise error
        on_unavailable(pointer, error)
        return lambda sink: sink.write(head)
    if not store.has(pointer.oid):
        try:
            fetch(pointer)
        except MlxError as exc:
            if on_unavailable is None:
                raise
            on_unavailable(pointer, exc)
            return lambda sink: sink.write(head)
    return lambda sink: stream_object(store, pointer, sink, path, verify=pointer.oid not in verified)


def check_stored_size(store: Store, pointer: Pointer, path: str) -> IntegrityError | None:
    """When the stored object's size differs from the pointer's: the error to report if
    the object is good (the pointer lies about its size: never move a good object, maybe
    the only copy, aside because of what a blob claims), else None after quarantining
    the corrupt object, so that it is fetched again."""
    if not store.has(pointer.oid) or store.size(pointer.oid) == pointer.size:
        return None
    if store.verify(pointer.oid):
        return IntegrityError(
            f"'{path}': its pointer says {pointer.size} bytes, object {pointer.short_oid} has "
            f"{store.size(pointer.oid)}",
            "the pointer is damaged: restore it from history or re-add the file",
        )
    store.quarantine(pointer.oid)
    return None


def stream_object(store: Store, pointer: Pointer, sink: Sink, path: str, verify: bool = True) -> None:
    """Copy a stored object into `sink`, hashing as it goes; raise at the end on a mismatch.

    A mismatch quarantines the object, so the next attempt fetches a good copy. Without
    `verify`, only the length is checked (for objects this process has just verified).
    """
    import hashlib  # not at module level: the filter's start waits for OpenSSL's load

    digest = hashlib.sha256() if verify else None
    copied = 0
    with store.open(pointer.oid) as stream:
        while block := stream.read(BLOCK_SIZE):
            if digest is not None:
                digest.update(block)
            sink.write(block)
            copied += len(block)
    if copied != pointer.size or (digest is not None and digest.hexdigest() != pointer.oid):
        store.quarantine(pointer.oid)
        raise _corrupt_local(pointer, path)


def _corrupt_local(pointer: Pointer, path: str) -> IntegrityError:
    return IntegrityError(
        f"'{path}': local copy of object {pointer.short_oid} is corrupt and was quarantined",
        "run 'git mlx checkout' to fetch a good copy from the remote",
    )


def pointer_for_file(stream: BinaryIO) -> Pointer:
    """The pointer a file would get, without storing it (`git mlx pointer`)."""
    import hashlib

    digest = hashlib.sha256()
    size = 0
    while block := stream.read(BLOCK_SIZE):
        digest.update(block)
        size += len(block)
    return Pointer(digest.hexdigest(), size)


def check_pointer_like(head: bytes, path: str) -> str | None:
    """A warning for content that starts like a pointer but is not one, else None."""
    why = pointers.describe_invalid(head)
    if why is None:
        return None
    return f"'{path}' looks like a gitmlx pointer but is not one ({why}); left as is"
