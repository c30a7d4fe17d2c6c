"""A remote writer who lies: manifests that rebuild their own object correctly but make
claims about their chunks meant to poison what a victim's later pushes reuse.

Driven through the real git and git-mlx; the remote is edited from the outside, as
docs/storage-format.md describes it, the way a hostile writer with bucket access would.
"""

from __future__ import annotations

import hashlib
import struct

from tests.support import remote_layout
from tests.support.commands import git, mlx
from tests.support.content import write_random
from tests.support.repos import Repos, assert_clean_worktree, assert_content, clone, commit_all, remote_store

_HEADER = struct.Struct("<8s32sQII")
_CHUNK = struct.Struct("<32sIQIIB")


def claim_chunk_hash(bare, oid: str, chunk: int, digest: bytes) -> None:
    """Rewrite one chunk record's sha256 in a manifest and re-seal its checksum."""
    body = bytearray(remote_layout.read_manifest_bytes(remote_store(bare), oid)[:-32])
    packs = _HEADER.unpack_from(body)[3]
    at = _HEADER.size + 32 * packs + _CHUNK.size * chunk
    body[at : at + 32] = digest
    remote_layout.write_manifest_bytes(remote_store(bare), oid, bytes(body) + hashlib.sha256(body).digest())


def test_a_push_after_fetching_a_poisoned_manifest_uploads_the_right_bytes(repos: Repos, sealed) -> None:
    size = 12 * 1024  # under the minimum chunk size: each file is one chunk
    decoy = write_random(repos.work / "decoy.bin", size, "decoy")
    commit_all(repos.work, "decoy")
    git("push", "-q", "origin", "HEAD:main", cwd=repos.work)
    zeros = bytes(size)
    claim_chunk_hash(repos.remote, decoy, 0, hashlib.sha256(zeros).digest())

    victim = sealed.root / "victim"
    clone(repos.remote, victim)  # fetches the decoy: its bytes are right, its claim is not
    assert_content(victim, "decoy.bin", decoy)
    (victim / "zeros.bin").write_bytes(zeros)
    commit_all(victim, "zeros")
    git("push", "-q", "origin", "HEAD:main", cwd=victim)

    fresh = sealed.root / "fresh"
    clone(repos.remote, fresh)
    assert_content(fresh, "zeros.bin", hashlib.sha256(zeros).hexdigest())
    assert_clean_worktree(fresh)
    mlx("fsck", "--remote", cwd=fresh)
