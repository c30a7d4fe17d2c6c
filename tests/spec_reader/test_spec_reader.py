"""The storage spec's executable check: a remote gitmlx writes is read back, object by
object, by tests/spec_reader/reader.py, which knows only what docs/storage-format.md says.

The repository is built to hold every kind of object the spec describes (empty, tiny, many
small ones sharing packs, a solo pack, zstd chunks, byte-grouped fp16 and fp32 chunks, a
chunk named twice, chunks reused out of offset order), and the test asserts that the
remote really holds each kind, so a writer change that stops producing one is noticed
rather than silently untested.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.spec_reader import reader
from tests.support.commands import git, mlx
from tests.support.content import float_bytes
from tests.support.repos import Repos, blob_at, commit_all, tracked_files
from tests.support.sealed import Sealed

KIB = 1024
MIB = 1024 * KIB


def _compressible(size: int, seed: int) -> bytes:
    """Text-like bytes (words from a small vocabulary) that zstd shrinks well."""
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(500)]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=16)) + b"\n"
    return bytes(out[:size])


def _write(repo: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _pointers(repo: Path) -> dict[str, int]:
    """oid -> size of every gitmlx pointer in every commit of the history."""
    found: dict[str, int] = {}
    for rev in git("rev-list", "--all", cwd=repo).stdout.split():
        for path in tracked_files(repo, rev):
            try:
                oid, size = reader.parse_pointer(blob_at(repo, f"{rev}:{path}"))
            except reader.SpecError:
                continue
            found[oid] = size
    return found


def test_reader_from_the_spec_rebuilds_every_object(repos: Repos) -> None:
    rng = random.Random(18)
    a, b, c = (rng.randbytes(MIB) for _ in range(3))
    block = rng.randbytes(300 * KIB)
    v1 = {
        "empty.bin": b"",
        "tiny.bin": b"hi\n",
        **{f"small/{i:03}.bin": rng.randbytes(rng.randint(1, 6 * KIB)) for i in range(120)},
        "solo.bin": rng.randbytes(9 * MIB),  # incompressible, >= 8 MiB: a pack of its own
        "text.bin": _compressible(3 * MIB, 1),  # zstd chunks
        "repeat.bin": block * 4,  # the same chunks named more than once
        "model.bin": a + b + c,
        "fp32.bin": float_bytes(100_000, 32, "f"),  # byte-grouped chunks (codec 2)
        "fp16.bin": float_bytes(150_000, 16, "e")[1:],  # ... starting inside an element
    }
    _write(repos.work, v1)
    commit_all(repos.work, "v1")
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=repos.work)
    # v2, pushed later, reuses v1's chunks in another order (offsets out of order) and
    # edits one region.
    _write(repos.work, {"model.bin": c + a + b[: MIB // 2] + rng.randbytes(4 * KIB) + b[MIB // 2 :]})
    commit_all(repos.work, "v2")
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=repos.work)

    git_dir = Path(git("rev-parse", "--absolute-git-dir", cwd=repos.remote).stdout.strip())
    root = reader.default_root(git_dir)
    pointers = _pointers(repos.work)
    assert len(pointers) == len(v1) + 1
    # A new remote is format 2: every shard passes every check, and every object it holds
    # (no more, no fewer than the history names) is found through a shard and rebuilt.
    assert reader.check_marker(root) == 2 and not (root / "manifests").exists()
    on_remote: set[str] = set()
    for shard in (root / "shards").iterdir():
        assert reader.SHARD_NAME.fullmatch(shard.name), shard.name
        on_remote |= set(reader.parse_shard(shard.read_bytes(), shard.name))
    assert on_remote == set(pointers)
    manifests = {}
    for oid, size in pointers.items():
        data = reader.read_object(root, oid, size)
        assert len(data) == size and reader.sha256(data) == oid
        manifests[oid] = reader.parse_manifest(reader.find_manifest(root, oid), oid, size, reader.CODECS[2])

    expected = {reader.sha256(data): name for name, data in v1.items()}
    for oid, name in expected.items():
        assert oid in manifests, f"{name} is not among the pointers"
    by_name = {name: manifests[oid] for oid, name in expected.items()}
    # The remote holds every kind the spec describes, so the reader was exercised on each.
    assert by_name["empty.bin"].chunks == () and by_name["empty.bin"].packs == ()
    solo = by_name["solo.bin"]
    assert solo.packs == (solo.oid,), "a new raw object of 9 MiB is stored as a solo pack"
    assert any(c.codec == 1 for c in by_name["text.bin"].chunks)
    for name in ("fp32.bin", "fp16.bin"):
        assert any(c.codec == 2 for c in by_name[name].chunks), f"{name} has byte-grouped chunks"
    small_packs = {p for name, m in by_name.items() if name.startswith("small/") for p in m.packs}
    assert len(small_packs) < 10, "small objects share packs"
    hashes = [c.hash for c in by_name["repeat.bin"].chunks]
    assert len(set(hashes)) < len(hashes), "a chunk is named more than once"
    v2 = next(m for oid, m in manifests.items() if oid not in expected)
    offsets = [(c.pack, c.offset) for c in v2.chunks]
    assert offsets != sorted(offsets), "v2 reuses v1's chunks out of offset order"
    shared = {c.hash for c in v2.chunks} & {c.hash for c in by_name["model.bin"].chunks}
    assert len(shared) >= len(v2.chunks) * 3 // 4, "two versions share their unchanged chunks"
    # "Pack ids": a solo pack is named by its bytes, every pack the writer built by its table.
    every_chunk = [c for m in manifests.values() for c in m.chunks]
    kinds = {pack: reader.pack_id_kind(root, pack, every_chunk) for m in manifests.values() for pack in m.packs}
    assert kinds.pop(solo.oid) == "byte"
    assert kinds and set(kinds.values()) == {"table"}


def test_reader_rejects_a_flipped_chunk(repos: Repos) -> None:
    """The reader is strict enough to fail: one flipped byte in a pack is caught."""
    data = random.Random(7).randbytes(200 * KIB)
    _write(repos.work, {"one.bin": data})
    commit_all(repos.work, "one")
    git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=repos.work)
    root = reader.default_root(repos.remote)
    oid = reader.sha256(data)
    manifest = reader.parse_manifest(
        reader.find_manifest(root, oid), oid, None, reader.CODECS[reader.check_marker(root)]
    )
    chunk = manifest.chunks[-1]
    pack = reader.pack_path(root, chunk.pack)
    pack.chmod(0o644)
    raw = bytearray(pack.read_bytes())
    raw[chunk.offset] ^= 0xFF
    pack.write_bytes(bytes(raw))
    try:
        reader.read_object(root, oid)
    except reader.SpecError as exc:
        assert "does not match its hash" in str(exc)
    else:
        raise AssertionError("a flipped chunk was read back")


def test_pointer_lengths_the_spec_states() -> None:
    """docs/pointer-format.md states the shortest and longest pointers; gitmlx agrees."""
    from gitmlx.format.pointer import LFS_VERSION, Pointer

    text = (Path(__file__).resolve().parents[2] / "docs" / "pointer-format.md").read_text(encoding="utf-8")
    for version, (short, long) in ((None, (118, 136)), (LFS_VERSION, (126, 144))):
        extra = {"version": version} if version else {}
        lengths = (len(Pointer("0" * 64, 0, **extra).encode()), len(Pointer("f" * 64, 2**63 - 1, **extra).encode()))
        assert lengths == (short, long)
        assert f"{short} to {long} bytes" in text


def test_embedded_default_of_a_non_bare_remote_is_its_git_dir(sealed: Sealed) -> None:
    """A non-bare git remote keeps the artifacts in its `.git/mlx`, not beside the work tree."""
    shared = sealed.root / "shared"
    git("init", "-q", shared, cwd=sealed.root)
    git("commit", "-q", "--allow-empty", "-m", "root", cwd=shared)
    work = sealed.root / "work"
    git("clone", "-q", shared, work, cwd=sealed.root)
    mlx("install", cwd=work)
    mlx("track", "*.bin", cwd=work)
    data = random.Random(3).randbytes(100 * KIB)
    _write(work, {"w.bin": data})
    commit_all(work, "w")
    git("push", "-q", "origin", "HEAD:refs/heads/side", cwd=work)
    root = reader.default_root(shared / ".git")
    assert reader.read_object(root, reader.sha256(data), len(data)) == data
    assert not (shared / "mlx").exists()


@pytest.mark.parametrize("shape", ["suffix", "gitfile"])
def test_embedded_default_is_the_git_dir_git_itself_pushes_to(sealed: Sealed, shape: str) -> None:
    """`../remote` when only `../remote.git` exists (git tries the `.git` suffixes), and a
    remote whose `.git` is a file pointing at a separate git directory: the artifacts go
    to the git directory git pushed to, and a clone of that repository restores them."""
    if shape == "suffix":
        git_dir = sealed.root / "remote.git"
        git("init", "-q", "--bare", git_dir, cwd=sealed.root)
        url = sealed.root / "remote"
    else:
        git_dir = sealed.root / "separate.git"
        url = sealed.root / "shared"
        git("init", "-q", f"--separate-git-dir={git_dir}", url, cwd=sealed.root)
        git("config", "receive.denyCurrentBranch", "ignore", cwd=url)
    work = sealed.root / "work"
    git("init", "-q", work, cwd=sealed.root)
    git("remote", "add", "origin", url, cwd=work)
    mlx("install", cwd=work)
    mlx("track", "*.bin", cwd=work)
    data = random.Random(4).randbytes(100 * KIB)
    _write(work, {"w.bin": data})
    commit_all(work, "w")
    git("push", "-q", "origin", "HEAD:refs/heads/side", cwd=work)
    assert reader.read_object(reader.default_root(git_dir), reader.sha256(data), len(data)) == data
    assert not (sealed.root / "remote" / "mlx").exists() and not (url / "mlx").exists()
    git("clone", "-q", "-b", "side", git_dir, sealed.root / "again", cwd=sealed.root)
    assert (sealed.root / "again" / "w.bin").read_bytes() == data
