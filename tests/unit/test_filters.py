"""gitmlx.checkout.filters: clean and smudge against a real store in a temporary directory."""

from __future__ import annotations

import io
import os

import pytest

from gitmlx.checkout import filters
from gitmlx.errors import IntegrityError, MlxError
from gitmlx.format.pointer import LFS_VERSION, MAX_POINTER_SIZE, MLX_VERSION, Pointer, parse
from gitmlx.store import objects as store_module
from gitmlx.store.objects import BLOCK_SIZE, Store, StoredObject
from tests.support.content import Sink, Source, files_under, sha
from tests.support.unit_store import corrupt_in_pack, put_loose, read_object


def no_fetch(pointer: Pointer) -> None:
    raise AssertionError(f"fetch must not be called (asked for {pointer.short_oid})")


def smudge(store: Store, data: bytes, fetch=no_fetch, path: str = "model.bin", warn=None) -> bytes:
    body = filters.prepare_smudge(Source(data), store, fetch, path, warn)
    sink = Sink()
    body(sink)
    return bytes(sink.data)


#: How a test object is stored: a file of its own, or inside a finished store pack.
LAYOUTS = ["loose", "packed"]
NEIGHBOUR = b"another object in the same pack"


def put(store: Store, data: bytes, layout: str = "loose") -> Pointer:
    """Store `data` loose, or packed (with a neighbour, so the pack is not turned into a
    loose object, and the pack finished so a fresh Store sees it too)."""
    if layout == "loose":
        pointer = put_loose(store, data)
        assert store.path(pointer.oid).is_file()
        return pointer
    pointer = store.insert_stream(io.BytesIO(data))
    store.insert_stream(io.BytesIO(NEIGHBOUR))
    store.finish_pack()
    assert store.is_packed(pointer.oid)
    return pointer


def corrupt(store: Store, oid: str, data: bytes) -> None:
    """Replace a stored object's bytes: the loose file, or (same length only) its bytes
    inside its pack."""
    path = store.path(oid)
    if path.is_file():
        os.chmod(path, 0o644)
        path.write_bytes(data)
        return
    corrupt_in_pack(store, oid, data)


def assert_quarantined(store: Store, oid: str, bad: bytes) -> None:
    """`oid` is gone from every view of the store and its corrupt bytes are kept in bad/;
    a packed neighbour (if any) survived the pack's rewrite intact."""
    assert not store.has(oid)
    assert not Store(store.root).has(oid)
    assert oid not in {o.oid for o in Store(store.root).iter_objects()}
    assert (store.root / "bad" / oid).read_bytes() == bad
    neighbour = sha(NEIGHBOUR)
    if Store(store.root).has(neighbour):
        assert read_object(Store(store.root), neighbour) == NEIGHBOUR
        assert Store(store.root).verify(neighbour)


# --- clean --------------------------------------------------------------------------


def test_clean_stores_content_and_returns_its_pointer(store: Store) -> None:
    data = b"tensor bytes " * 1000
    text = filters.clean(Source(data, step=100), store)
    assert text == Pointer(sha(data), len(data), MLX_VERSION).encode()
    assert read_object(store, sha(data)) == data


def test_clean_of_content_bigger_than_a_block(store: Store) -> None:
    data = bytes(range(256)) * (BLOCK_SIZE // 256 * 2 + 3)
    text = filters.clean(Source(data, step=BLOCK_SIZE // 2 + 1), store)
    assert parse(text) == Pointer(sha(data), len(data))
    assert store.verify(sha(data))


@pytest.mark.parametrize("size", [0, 1, MAX_POINTER_SIZE - 1, MAX_POINTER_SIZE, MAX_POINTER_SIZE + 1])
def test_clean_at_pointer_size_boundaries(store: Store, size: int) -> None:
    data = b"z" * size
    assert filters.clean(Source(data, step=7), store) == Pointer(sha(data), size).encode()
    assert store.has(sha(data))


@pytest.mark.parametrize("version", [MLX_VERSION, LFS_VERSION])
def test_clean_of_pointer_text_returns_it_unchanged(store: Store, version: str) -> None:
    text = Pointer(sha(b"elsewhere"), 9, version).encode()
    assert filters.clean(Source(text, step=5), store) == text
    assert files_under(store.root) == []


def test_clean_is_idempotent(store: Store) -> None:
    once = filters.clean(Source(b"content"), store)
    twice = filters.clean(Source(once), store)
    assert once == twice
    store.sync()
    assert list(store.iter_objects()) == [StoredObject(sha(b"content"), len(b"content"))]


def test_clean_of_pointer_like_but_invalid_text_stores_it_as_content(store: Store) -> None:
    text = Pointer(sha(b"x"), 1).encode().replace(b"\n", b"\r\n")
    out = filters.clean(Source(text), store)
    assert out == Pointer(sha(text), len(text)).encode()
    assert read_object(store, sha(text)) == text


def test_clean_of_pointer_followed_by_more_content_stores_it(store: Store) -> None:
    data = Pointer(sha(b"x"), 1).encode() + b"\0" * 5000
    assert filters.clean(Source(data), store) == Pointer(sha(data), len(data)).encode()


def test_pointer_for_file_matches_clean_without_storing(store: Store) -> None:
    data = b"abc" * 5000
    assert filters.pointer_for_file(io.BytesIO(data)).encode() == filters.clean(Source(data), store)
    other = Store(store.root.parent / "other")
    filters.pointer_for_file(io.BytesIO(data))
    assert files_under(other.root) == []


# --- smudge: content that is not a pointer ------------------------------------------


def test_smudge_passes_ordinary_content_through(store: Store) -> None:
    assert smudge(store, b"just a file\n") == b"just a file\n"


def test_smudge_passes_empty_content_through(store: Store) -> None:
    assert smudge(store, b"") == b""


def test_smudge_passes_big_content_through_spooled(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters, "SPOOL_IN_MEMORY", 4096)  # force the spool onto disk
    data = bytes(range(256)) * (BLOCK_SIZE // 256 * 2 + 1)
    source = Source(data, step=65516)
    body = filters.prepare_smudge(source, store, no_fetch, "big.bin")
    assert source.exhausted  # all input is consumed before any reply (protocol deadlock rule)
    sink = Sink()
    body(sink)
    assert bytes(sink.data) == data
    assert files_under(store.root) == []


def test_smudge_warns_about_pointer_like_but_invalid_content_and_passes_it_through(store: Store) -> None:
    warnings: list[str] = []
    data = Pointer(sha(b"x"), 1).encode().replace(b"size 1", b"size 01")
    assert smudge(store, data, path="dir/m.bin", warn=warnings.append) == data
    [message] = warnings
    assert "'dir/m.bin'" in message and "size" in message


def test_smudge_does_not_warn_about_ordinary_content(store: Store) -> None:
    warnings: list[str] = []
    smudge(store, b"version 1.0\nhello\n", warn=warnings.append)
    assert warnings == []


def test_smudge_of_pointer_plus_trailing_bytes_is_content(store: Store) -> None:
    data = Pointer(sha(b"x"), 1).encode() + b"more"
    assert smudge(store, data) == data


# --- smudge: pointers ---------------------------------------------------------------


@pytest.mark.parametrize("version", [MLX_VERSION, LFS_VERSION])
def test_smudge_of_a_stored_object(store: Store, version: str) -> None:
    data = b"stored " * 100_000
    p = store.insert_stream(io.BytesIO(data))
    text = Pointer(p.oid, p.size, version).encode()
    assert smudge(store, text) == data


def test_smudge_of_a_missing_object_calls_fetch(store: Store) -> None:
    data = b"on the remote"
    p = Pointer(sha(data), len(data))
    asked: list[Pointer] = []

    def fetch(pointer: Pointer) -> None:
        asked.append(pointer)
        store.insert_stream(io.BytesIO(data), expected=pointer)

    assert smudge(store, p.encode(), fetch=fetch) == data
    assert asked == [p]


def test_smudge_fetch_failure_raises_before_any_byte(store: Store) -> None:
    p = Pointer(sha(b"nowhere"), 7)

    def fetch(pointer: Pointer) -> None:
        raise MlxError("object not on the remote")

    with pytest.raises(MlxError, match="not on the remote"):
        filters.prepare_smudge(Source(p.encode()), store, fetch, "m.bin")


@pytest.mark.parametrize("stored", [False, True])
def test_smudge_without_fetch_passes_the_pointer_through(store: Store, stored: bool) -> None:
    data = b"skip me"
    if stored:
        store.insert_stream(io.BytesIO(data))
    text = Pointer(sha(data), len(data)).encode()
    assert smudge(store, text, fetch=None) == text


@pytest.mark.parametrize("layout", LAYOUTS)
def test_smudge_of_corrupt_object_same_size_raises_after_streaming_and_quarantines(store: Store, layout: str) -> None:
    data = b"good bytes " * 1000
    p = put(store, data, layout)
    bad = b"evil bytes " * 1000
    corrupt(store, p.oid, bad)
    body = filters.prepare_smudge(Source(p.encode()), store, no_fetch, "w.bin")
    sink = Sink()
    with pytest.raises(IntegrityError) as info:
        body(sink)
    assert bytes(sink.data) == bad  # streamed; the error after the last block fails the file
    assert "'w.bin'" in str(info.value) and p.short_oid in str(info.value)
    assert info.value.hint
    assert_quarantined(store, p.oid, bad)


def test_smudge_of_object_with_wrong_size_is_caught_before_any_byte_and_refetched(store: Store) -> None:
    # Loose only: a packed object's size is in the pack's index, not in its bytes.
    data = b"0123456789"
    p = put(store, data)
    corrupt(store, p.oid, data + b"!")
    fetched: list[Pointer] = []

    def fetch(pointer: Pointer) -> None:
        assert not store.has(pointer.oid)  # quarantined before the fetch
        fetched.append(pointer)
        store.insert_stream(io.BytesIO(data), expected=pointer)

    assert smudge(store, p.encode(), fetch=fetch, path="w.bin") == data
    assert fetched == [p]
    assert (store.root / "bad" / p.oid).read_bytes() == data + b"!"
    assert read_object(store, p.oid) == data and store.verify(p.oid)


def test_smudge_of_object_with_wrong_size_and_no_good_copy_fails_before_any_byte(store: Store) -> None:
    data = b"0123456789"
    p = put(store, data)
    corrupt(store, p.oid, data[:-1])

    def fetch(pointer: Pointer) -> None:
        raise MlxError("object not on the remote")

    with pytest.raises(MlxError):
        filters.prepare_smudge(Source(p.encode()), store, fetch, "w.bin")
    assert_quarantined(store, p.oid, data[:-1])


def test_smudge_unavailable_object_passes_the_pointer_through_when_told_how(store: Store) -> None:
    p = Pointer(sha(b"nowhere"), 7)
    failure = MlxError("object not on the remote")
    told: list[tuple[Pointer, MlxError]] = []

    def fetch(pointer: Pointer) -> None:
        raise failure

    body = filters.prepare_smudge(Source(p.encode()), store, fetch, "m.bin", None, lambda q, e: told.append((q, e)))
    sink = Sink()
    body(sink)
    assert bytes(sink.data) == p.encode()
    assert told == [(p, failure)]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_smudge_after_quarantine_fetches_again(store: Store, layout: str) -> None:
    data = b"restorable"
    p = put(store, data, layout)
    corrupt(store, p.oid, b"RESTORABLE")
    with pytest.raises(IntegrityError):
        smudge(store, p.encode())
    assert_quarantined(store, p.oid, b"RESTORABLE")
    fetched: list[Pointer] = []

    def fetch(pointer: Pointer) -> None:
        fetched.append(pointer)
        store.insert_stream(io.BytesIO(data), expected=pointer)

    assert smudge(store, p.encode(), fetch=fetch) == data
    assert fetched == [p]
    store.sync()
    assert read_object(Store(store.root), p.oid) == data and Store(store.root).verify(p.oid)


def test_check_pointer_like() -> None:
    good = Pointer(sha(b"x"), 1).encode()
    assert filters.check_pointer_like(good, "a") is None
    assert filters.check_pointer_like(b"hello", "a") is None
    message = filters.check_pointer_like(good.replace(b"sha256:", b"sha1:"), "a b.bin")
    assert message is not None and message.startswith("'a b.bin' looks like a gitmlx pointer")


def test_quarantine_deletes_when_bad_is_on_another_file_system(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    pointer = put(store, b"soon corrupt")

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(store_module.os, "replace", cross_device)
    store.quarantine(pointer.oid)

    assert not store.has(pointer.oid)  # the valid name no longer holds the bad bytes
    assert not store.path(pointer.oid).exists()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_quarantine_keeps_the_bad_bytes_and_forgets_the_object(store: Store, layout: str) -> None:
    pointer = put(store, b"soon corrupt", layout)
    corrupt(store, pointer.oid, b"SOON CORRUPT")
    store.quarantine(pointer.oid)
    assert_quarantined(store, pointer.oid, b"SOON CORRUPT")


def test_quarantine_of_an_object_in_the_pack_being_written(store: Store) -> None:
    pointer = store.insert_stream(io.BytesIO(b"not yet in a finished pack"))
    kept = store.insert_stream(io.BytesIO(b"kept"))
    store.quarantine(pointer.oid)
    assert not store.has(pointer.oid)
    assert (store.root / "bad" / pointer.oid).read_bytes() == b"not yet in a finished pack"
    store.finish_pack()
    assert not Store(store.root).has(pointer.oid)
    assert read_object(Store(store.root), kept.oid) == b"kept"
