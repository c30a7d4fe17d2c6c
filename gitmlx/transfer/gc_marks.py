"""Garbage-collection notes on a remote: what `gc --remote` marked for deletion, and how a
pusher protects a marked key before it writes that key again.

Owns: the `gc/` documents of docs/storage-format.md ("Garbage collection"): their JSON
encoding, reading them, writing them, and the pusher's half of the handshake (`announce`).
Must not: decide what is reachable (that is `gitmlx.maintenance.gc`) or print.

Kinds of note, each `gc/<kind>-<UTC time>-<random>.json`:
* `pending`  — written by gc phase 1: manifests no ref reached and packs no live manifest named
  (format 2: also shards holding such manifests, each already replaced by a compacted one).
* `keep`     — written by a pusher before it re-writes a key a pending note lists.
* `deleting` — written by gc phase 2 while it deletes; removed when it is done.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gitmlx.errors import ObjectNotFound, RemoteError, shown
from gitmlx.format import layout
from gitmlx.format.pointer import is_valid_oid
from gitmlx.remotes.base import Remote
from gitmlx.transfer.common import put_bytes

NOTE_FORMAT = 1
#: A note past this size is not one of ours (a pending note for a million objects is ~140 MB).
NOTE_LIMIT = 256 * 1024 * 1024
#: A `deleting` note older than this is left by a gc that died; pushers stop waiting for it.
DELETING_TIMEOUT = 600
#: gc phase 2 renews its `deleting` note (and re-reads `keep` notes) at least this often.
DELETING_RENEW = 60
_POLL_SECONDS = 2.0
#: A note dated further ahead than this is invalid (a clock that far off, or a note made
#: to stall pushes); less counts, since two machines' clocks may differ by minutes.
FUTURE_SKEW = 300


def now() -> int:
    """Unix seconds. `GIT_MLX_NOW` (Unix seconds) replaces the clock, for tests only."""
    fake = os.environ.get("GIT_MLX_NOW")
    if fake:
        try:
            return int(float(fake))
        except ValueError:
            raise RemoteError(f"invalid GIT_MLX_NOW {fake!r}", "unset it (it is for tests only)") from None
    return int(time.time())


@dataclass(frozen=True)
class Note:
    key: str
    kind: str
    created: int
    manifests: frozenset[str] = frozenset()
    packs: frozenset[str] = frozenset()
    #: Format 2: shard ids (gc replaced each by a compacted shard before marking it).
    shards: frozenset[str] = frozenset()


@dataclass
class Marks:
    """The gc notes found on a remote (contents read only for the kinds asked for)."""

    notes: list[Note] = field(default_factory=list)
    #: Keys of notes whose contents could not be read or parsed (not ours, or damaged).
    unreadable: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[Note]:
        return [n for n in self.notes if n.kind == kind]

    @property
    def manifests(self) -> frozenset[str]:
        """Oids whose manifests a pending note marks for deletion."""
        return frozenset().union(*(n.manifests for n in self.of("pending")))

    @property
    def packs(self) -> frozenset[str]:
        """Pack ids a pending note marks for deletion."""
        return frozenset().union(*(n.packs for n in self.of("pending")))

    @property
    def shards(self) -> frozenset[str]:
        """Shard ids a pending note marks for deletion (format 2)."""
        return frozenset().union(*(n.shards for n in self.of("pending")))


def encode_note(
    kind: str,
    created: int,
    manifests: Iterable[str] = (),
    packs: Iterable[str] = (),
    extra: Mapping[str, int] | None = None,
    shards: Iterable[str] = (),
) -> bytes:
    doc = {
        "format": NOTE_FORMAT,
        "kind": kind,
        "created": created,
        "manifests": sorted(set(manifests)),
        "packs": sorted(set(packs)),
        **({"shards": sorted(set(shards))} if shards else {}),
        **(extra or {}),
    }
    return (json.dumps(doc, sort_keys=True, indent=0) + "\n").encode()


def decode_note(key: str, kind: str, created: int, data: bytes) -> Note:
    """Parse a note; ValueError when it is malformed, RemoteError when it is from a newer gitmlx."""
    doc = json.loads(data.decode("utf-8"))
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if doc.get("format") != NOTE_FORMAT:
        raise RemoteError(
            f"gc note '{key}' uses format {shown(doc.get('format'))}; this gitmlx reads format {NOTE_FORMAT}",
            "upgrade gitmlx (./install.sh from a newer checkout)",
        )
    lists = []
    for name in ("manifests", "packs", "shards"):
        items = doc.get(name, [])
        if not isinstance(items, list) or not all(is_valid_oid(i) for i in items):
            raise ValueError(f"bad {name} list")
        lists.append(frozenset(items))
    return Note(key, kind, created, lists[0], lists[1], lists[2])


def list_notes(remote: Remote) -> list[tuple[str, str, int]]:
    """(key, kind, created) of every gc note; other keys under `gc/` are ignored."""
    found = []
    for entry in remote.list(layout.GC_PREFIX):
        parsed = layout.gc_note_from_key(entry.key)
        if parsed is not None:
            found.append((entry.key, *parsed))
    return sorted(found, key=lambda n: (n[2], n[0]))


def read_marks(remote: Remote, kinds: Iterable[str] = ("pending",)) -> Marks:
    """List `gc/` once and read the notes of `kinds` (the others with empty contents)."""
    wanted = set(kinds)
    marks = Marks()
    for key, kind, created in list_notes(remote):
        if kind not in wanted:
            marks.notes.append(Note(key, kind, created))
            continue
        try:
            data = remote.read_range(key, 0, NOTE_LIMIT)
        except ObjectNotFound:
            continue  # removed by a gc since the listing: nothing to honour
        try:
            if len(data) >= NOTE_LIMIT:
                raise ValueError("too large")
            marks.notes.append(decode_note(key, kind, created, data))
        except (ValueError, UnicodeDecodeError, RecursionError):  # nesting deeper than json can read
            marks.unreadable.append(key)
    return marks


def write_note(
    remote: Remote,
    kind: str,
    tmp_dir: Path,
    manifests: Iterable[str] = (),
    packs: Iterable[str] = (),
    created: int | None = None,
    extra: Mapping[str, int] | None = None,
    shards: Iterable[str] = (),
) -> str:
    """Put a new note; returns its key."""
    created = now() if created is None else created
    key = layout.gc_key(kind, created, secrets.token_hex(8))
    put_bytes(remote, key, encode_note(kind, created, manifests, packs, extra, shards), tmp_dir)
    return key


def active_deleting(remote: Remote) -> list[str]:
    """`deleting` notes young enough that their gc may still be deleting. One dated more
    than FUTURE_SKEW ahead is invalid: it would hold every push for the whole timeout."""
    t = now()
    return [
        key
        for key, kind, created in list_notes(remote)
        if kind == "deleting" and -FUTURE_SKEW <= t - created < DELETING_TIMEOUT
    ]


def announce(
    remote: Remote,
    tmp_dir: Path,
    manifests: Iterable[str] = (),
    packs: Iterable[str] = (),
    sleep: Callable[[float], None] = time.sleep,
    waiting: Callable[[str], None] | None = None,
    shards: Iterable[str] = (),
) -> None:
    """A pusher's half of the handshake, before it re-writes keys a pending note lists.

    Write a `keep` note first, then wait while a gc is deleting. gc writes its `deleting`
    note first and then reads `keep` notes, so one of the two always sees the other: either
    gc skips these keys, or this push writes them only after gc has finished deleting.
    """
    write_note(remote, "keep", tmp_dir, manifests, packs, shards=shards)
    deadline = time.monotonic() + DELETING_TIMEOUT
    told = False
    while (busy := active_deleting(remote)) and time.monotonic() < deadline:
        if waiting is not None and not told:
            waiting(
                f"waiting for 'gc --remote' to finish deleting on '{remote.display_url}' ({busy[0]}), "
                f"at most {DELETING_TIMEOUT // 60} minutes"
            )
            told = True
        sleep(_POLL_SECONDS)
