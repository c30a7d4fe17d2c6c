"""A repository's local store, read and damaged from the outside, as docs/local-store.md
("Layout", "Store packs") describes it.

Owns: finding every copy of an object (its loose file under objects/<oid[0:2]>/<oid[2:4]>/,
and its range in each store pack), the strict check of a store pack a test reads, and
damaging or removing an object's copies the way a disk fault or `prune` would.
Must not: import gitmlx (see tests/support/formats.py), or leave a store pack under a name
its index does not give it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import random
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support.commands import git
from tests.support.content import BLOCK
from tests.support.formats import (
    OID,
    STORE_PACK_NAME,
    STORE_PACK_SUFFIX,
    is_loose_object_path,
    loose_object_key,
    parse_store_pack,
    store_pack_bytes,
    store_pack_name,
    store_pack_problems,
)
from tests.support.repos import commit_all, local_store

_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


@dataclass(frozen=True)
class ObjectLocation:
    """Where one copy of an object's bytes is: a loose file (offset 0, the whole file) or
    the range [offset, offset + size) of a store pack."""

    path: Path
    offset: int
    size: int
    packed: bool

    def read(self) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.size)
        assert len(data) == self.size, f"{self} is cut short"
        return data

    def sha256(self) -> str:
        """The sha256 of these bytes (streamed)."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            left = self.size
            while left:
                block = f.read(min(left, BLOCK))
                assert block, f"{self} is cut short"
                digest.update(block)
                left -= len(block)
        return digest.hexdigest()

    def __str__(self) -> str:
        if self.packed:
            return f"store pack {self.path.name} [{self.offset}, +{self.size}]"
        return f"loose file {self.path}"


def as_store(repo_or_store: Path) -> Path:
    """A work tree (it has `.git`) -> its local store; anything else is taken as a store."""
    repo_or_store = Path(repo_or_store)
    return local_store(repo_or_store) if (repo_or_store / ".git").exists() else repo_or_store


def object_path(store: Path, oid: str) -> Path:
    """Where a *loose* object lives (in a local store; the same layout as Git LFS's)."""
    return store / loose_object_key(oid)


def read_store_pack(path: Path) -> dict[str, tuple[int, int]]:
    """oid -> (offset, size) for every object of a store pack, after checking everything the
    format lets a reader check: the name, that the file is whole (both magics, an index
    that ends the file and hashes to its digest), that the name is the digest's first 40
    hex digits, every rule of `store_pack_problems`, and the file read-only. gitmlx renames
    only finished packs into `packs/`, so any failure is a bug (or damage a test did)."""
    assert STORE_PACK_NAME.fullmatch(path.name), f"{path} is named like no store pack"
    mode = path.stat().st_mode
    assert not mode & _WRITE_BITS, f"store pack {path.name} is writable (mode {oct(mode & 0o777)})"
    try:
        pack = parse_store_pack(path.read_bytes())
    except ValueError as exc:
        raise AssertionError(f"store pack {path.name}: {exc}") from exc
    assert path.name == store_pack_name(pack.digest), f"store pack {path.name} is not named by its digest"
    problems = store_pack_problems(pack)
    assert not problems, f"store pack {path.name}: " + "; ".join(problems)
    return {raw.hex(): (offset, size) for raw, offset, size in pack.entries}


def store_packs(repo_or_store: Path) -> dict[Path, dict[str, tuple[int, int]]]:
    """Every store pack (validated, see `read_store_pack`) -> its objects."""
    packs = as_store(repo_or_store) / "packs"
    if not packs.is_dir():
        return {}
    return {p: read_store_pack(p) for p in sorted(packs.glob(f"*{STORE_PACK_SUFFIX}")) if p.is_file()}


def loose_oids(repo_or_store: Path) -> set[str]:
    """Oids of loose objects under valid names (shards checked)."""
    objects = as_store(repo_or_store) / "objects"
    if not objects.is_dir():
        return set()
    return {path.name for path in objects.glob("*/*/*") if is_loose_object_path(path)}


def packed_oids(repo_or_store: Path) -> set[str]:
    return {oid for entries in store_packs(repo_or_store).values() for oid in entries}


def stored_oids(repo_or_store: Path) -> set[str]:
    """Oids the local store holds, loose or packed."""
    return loose_oids(repo_or_store) | packed_oids(repo_or_store)


def local_object_locations(repo_or_store: Path, oid: str) -> list[ObjectLocation]:
    """Every copy of the object in the store: its loose file first, then each pack."""
    assert OID.fullmatch(oid), f"not an oid: {oid!r}"
    store = as_store(repo_or_store)
    found = []
    loose = object_path(store, oid)
    if loose.is_file():
        found.append(ObjectLocation(loose, 0, loose.stat().st_size, packed=False))
    for pack, entries in store_packs(store).items():
        if oid in entries:
            offset, size = entries[oid]
            found.append(ObjectLocation(pack, offset, size, packed=True))
    return found


def local_object_location(repo_or_store: Path, oid: str) -> ObjectLocation | None:
    """Where the object's bytes are (the loose copy if there is one), or None."""
    found = local_object_locations(repo_or_store, oid)
    return found[0] if found else None


def has_local_object(repo_or_store: Path, oid: str) -> bool:
    return local_object_location(repo_or_store, oid) is not None


def object_layout(repo_or_store: Path, oid: str) -> str:
    """The kind of each copy, loose first, joined by '+': 'loose', 'packed', 'loose+packed'
    (and so on); 'absent' when the store has none."""
    kinds = ["packed" if where.packed else "loose" for where in local_object_locations(repo_or_store, oid)]
    return "+".join(kinds) or "absent"


def commit_with_layout(repo: Path, path: str, layout: str, message: str = "update") -> None:
    """Commit every change with `path`'s (small) object stored as `layout`: 'packed' (added
    with the rest, so one process stores them all in a store pack) or 'loose' (added on its
    own first: a process that stores just one object writes it loose)."""
    if layout == "loose":
        git("add", "--", path, cwd=repo)
    elif layout != "packed":
        raise ValueError(layout)
    commit_all(repo, message)


def local_object_bytes(repo_or_store: Path, oid: str) -> bytes:
    where = local_object_location(repo_or_store, oid)
    assert where is not None, f"object {oid[:10]} is not in the local store {as_store(repo_or_store)}"
    return where.read()


def assert_local_object(repo: Path, oid: str, size: int | None = None) -> ObjectLocation:
    """The object is in the repo's local store (loose under its sharded name, or in a store
    pack) and every copy of it hashes to it; returns where its bytes are (the loose copy
    first). A loose object must be read-only; a packed one must be under 2 MiB."""
    copies = local_object_locations(repo, oid)
    assert copies, f"object {oid[:10]} is not in the local store of {repo}"
    for where in copies:
        if size is not None:
            assert where.size == size, f"local object {oid[:10]} has {where.size} bytes, not {size} ({where})"
        if not where.packed:
            mode = where.path.stat().st_mode
            assert not mode & _WRITE_BITS, f"loose object {oid[:10]} is writable (mode {oct(mode & 0o777)})"
        assert where.sha256() == oid, f"local object {oid[:10]} does not hash to its name ({where})"
    return copies[0]


def corrupt_local_object(repo: Path, oid: str, how: str = "flip") -> list[ObjectLocation]:
    """Damage every copy of an object in the local store, in place (so no good copy is
    left to read instead); returns the copies. 'flip' inverts the first (up to) 16 bytes,
    keeping the size; 'truncate' cuts a loose file to half its size. A packed object's
    range cannot be cut without damaging the pack's index and every other object, so for
    it 'truncate' flips too: what the damage must exercise, bytes that no longer hash to
    the oid under a valid name, is the same. The pack is made writable for the write and
    read-only (0444) again after; its index (and so its name) stays valid."""
    if how not in ("flip", "truncate"):
        raise ValueError(how)
    copies = local_object_locations(repo, oid)
    assert copies, f"object {oid[:10]} is not in the local store of {repo}"
    for where in copies:
        assert where.size > 0, "an empty object has no byte to damage"
        mode = stat.S_IMODE(where.path.stat().st_mode)
        where.path.chmod(mode | stat.S_IWUSR)
        try:
            if how == "truncate" and not where.packed:
                os.truncate(where.path, where.size // 2)
            else:
                with open(where.path, "r+b") as f:
                    f.seek(where.offset)
                    head = f.read(min(where.size, 16))
                    f.seek(where.offset)
                    f.write(bytes(b ^ 0xFF for b in head))
        finally:
            where.path.chmod(mode)
    return copies


def _write_store_pack(packs: Path, objects: Mapping[str, bytes]) -> Path:
    """A store pack holding `objects`, renamed into `packs/` under its name, read-only."""
    name, data = store_pack_bytes(objects)
    tmp = packs / f".e2e-{os.getpid()}-{random.getrandbits(64):016x}"  # no pack name: readers skip it
    tmp.write_bytes(data)
    tmp.chmod(0o444)
    final = packs / name
    os.replace(tmp, final)
    return final


def remove_local_object(repo: Path, oid: str) -> None:
    """Remove every copy of an object from the local store: its loose file, and each store
    pack holding it is rewritten without it (as prune does: under an exclusive flock of
    `packs/.lock`, the new pack renamed into place before the old one is deleted)."""
    store = as_store(repo)
    copies = local_object_locations(store, oid)
    assert copies, f"object {oid[:10]} is not in the local store of {repo}"
    loose = object_path(store, oid)
    if loose.is_file():
        loose.chmod(stat.S_IRUSR | stat.S_IWUSR)
        loose.unlink()
    if not any(where.packed for where in copies):
        return
    packs = store / "packs"
    with open(packs / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for pack, entries in store_packs(store).items():
            if oid not in entries:
                continue
            keep = {}
            for other, (offset, size) in entries.items():
                if other != oid:
                    keep[other] = ObjectLocation(pack, offset, size, packed=True).read()
            if keep:
                assert _write_store_pack(packs, keep) != pack
            pack.unlink()
    assert not has_local_object(store, oid)
