"""Placement by swapping (spare.SpareFile): each object is written into one spare file
in the git dir and exchanged with the pointer file git wrote, whose inode becomes the next
spare. And the store's copies of placed objects leaving the page cache (Store.copied_out)."""

from __future__ import annotations

import ctypes
import io
import mmap
import os
import random
import subprocess
from pathlib import Path

import pytest

from gitmlx.checkout import worktree
from gitmlx.checkout.spare import SPARE_PREFIX, SpareFile
from gitmlx.errors import MlxError
from gitmlx.format.pointer import Pointer
from gitmlx.osutil import oscalls
from gitmlx.store.objects import Store

RNG = random.Random(7)

pytestmark = pytest.mark.skipif(not oscalls.can_exchange(), reason="no renameat2 here")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    return tmp_path / "repo"


def stored(store: Store, count: int, size: int) -> dict[str, tuple[bytes, Pointer]]:
    files = {}
    for i in range(count):
        data = RNG.randbytes(size)
        files[f"f{i:04d}.bin"] = (data, store.insert_stream(io.BytesIO(data)))
    store.finish_pack()
    return files


def write_pointer(path: Path, pointer: Pointer) -> bytes:
    """What git does in a checkout the filter places: the pointer text under the name."""
    text = pointer.encode()
    path.write_bytes(text)
    return text


def spares(git_dir: Path) -> list[str]:
    return sorted(n for n in os.listdir(git_dir) if n.startswith(SPARE_PREFIX))


def test_each_pointer_inode_is_reused_for_the_next_file(repo: Path) -> None:
    store = Store(repo / ".git" / "mlx")
    files = stored(store, 4, 100_000)
    spare = SpareFile(repo / ".git")
    inodes = []
    for name, (data, pointer) in files.items():
        text = write_pointer(repo / name, pointer)
        inodes.append(os.stat(repo / name).st_ino)
        st = worktree.place_over_pointer(store, repo, name, pointer, text, spare=spare)
        assert st is not None and (repo / name).read_bytes() == data
        assert os.stat(repo / name).st_ino == st.st_ino
    placed = [os.stat(repo / name).st_ino for name in files]
    # The first file got the spare's own inode; each later one the previous pointer's.
    assert placed[1:] == inodes[:-1]
    assert spares(repo / ".git") == [f"{SPARE_PREFIX}{os.getpid()}"]
    spare.remove()
    assert spares(repo / ".git") == []


def test_a_file_replaced_before_the_swap_gets_its_own_bytes_back(repo: Path) -> None:
    store = Store(repo / ".git" / "mlx")
    ((data, pointer),) = stored(store, 1, 50_000).values()
    write_pointer(repo / "a.bin", pointer)
    git_wrote = os.stat(repo / "a.bin")
    spare = SpareFile(repo / ".git")
    fd = spare.open(git_wrote.st_dev, 0o644)
    assert fd is not None
    os.write(fd, data)
    os.close(fd)
    # Between the check and the swap, the user saves another file under the name.
    (repo / "a.bin").unlink()
    (repo / "a.bin").write_bytes(b"the user's edit")
    assert spare.swap(str(repo / "a.bin"), git_wrote) is False
    assert (repo / "a.bin").read_bytes() == b"the user's edit"


def test_a_spare_linked_elsewhere_is_never_written_into(repo: Path) -> None:
    store = Store(repo / ".git" / "mlx")
    files = list(stored(store, 2, 30_000).items())
    spare = SpareFile(repo / ".git")
    (name, (data, pointer)) = files[0]
    worktree.place_over_pointer(store, repo, name, pointer, write_pointer(repo / name, pointer), spare=spare)
    # The spare now holds a.bin's old pointer inode; somebody had linked it elsewhere.
    os.link(spare.path, repo / "kept.txt")
    kept = (repo / "kept.txt").read_bytes()
    (name, (data, pointer)) = files[1]
    st = worktree.place_over_pointer(store, repo, name, pointer, write_pointer(repo / name, pointer), spare=spare)
    assert st is not None and (repo / name).read_bytes() == data
    assert (repo / "kept.txt").read_bytes() == kept


def test_where_names_cannot_be_exchanged_a_temporary_file_is_renamed(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(a: str, b: str) -> None:
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(oscalls, "exchange", refuse)
    store = Store(repo / ".git" / "mlx")
    files = stored(store, 2, 40_000)
    spare = SpareFile(repo / ".git")
    for name, (data, pointer) in files.items():
        st = worktree.place_over_pointer(store, repo, name, pointer, write_pointer(repo / name, pointer), spare=spare)
        assert st is not None and (repo / name).read_bytes() == data
    assert spares(repo / ".git") == []
    assert sorted(os.listdir(repo)) == [".git", *files]


def test_the_spares_of_processes_that_are_gone_are_removed(repo: Path) -> None:
    store = Store(repo / ".git" / "mlx")
    ((data, pointer),) = stored(store, 1, 10_000).values()
    dead = subprocess.Popen(["true"])
    dead.wait()
    git_dir = repo / ".git"
    (git_dir / f"{SPARE_PREFIX}{dead.pid}").write_bytes(b"left by a killed filter")
    (git_dir / f"{SPARE_PREFIX}{os.getppid()}").write_bytes(b"a live one's")
    spare = SpareFile(git_dir)
    worktree.place_over_pointer(store, repo, "a.bin", pointer, write_pointer(repo / "a.bin", pointer), spare=spare)
    assert (repo / "a.bin").read_bytes() == data
    assert spares(git_dir) == sorted([f"{SPARE_PREFIX}{os.getppid()}", f"{SPARE_PREFIX}{os.getpid()}"])


def resident_pages(path: Path, start: int = 0, end: int | None = None) -> tuple[int, int]:
    """(pages of `path` in the page cache, pages) between byte offsets `start` and `end`."""
    libc = ctypes.CDLL(None, use_errno=True)
    page = mmap.PAGESIZE
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)  # unwritten: the file's own pages
    buffer = (ctypes.c_char * len(m)).from_buffer(m)
    try:
        pages = (len(m) + page - 1) // page
        vec = (ctypes.c_ubyte * pages)()
        if libc.mincore(ctypes.c_void_p(ctypes.addressof(buffer)), ctypes.c_size_t(len(m)), vec) != 0:
            pytest.skip(f"mincore: {os.strerror(ctypes.get_errno())}")
        first, last = start // page, pages if end is None else end // page
        return sum(vec[i] & 1 for i in range(first, last)), last - first
    finally:
        del buffer
        m.close()


def drops_clean_pages(folder: Path) -> bool:
    """Whether this file system lets clean pages go on request (tmpfs keeps them)."""
    probe = folder / "probe"
    with open(probe, "wb") as f:
        f.write(os.urandom(1 << 20))
        f.flush()
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    cached, _ = resident_pages(probe)
    probe.unlink()
    return cached == 0


def test_the_store_copies_of_placed_objects_leave_the_page_cache(repo: Path) -> None:
    store = Store(repo / ".git" / "mlx")
    files = stored(store, 320, 128 * 1024)  # 40 MiB, one pack
    (pack,) = (store.packs_dir).glob("*.mlxpack")
    if not drops_clean_pages(repo):
        pytest.skip("this file system keeps clean pages")
    with open(pack, "rb") as f:
        os.fsync(f.fileno())  # written back, as the pack's writer starts as it goes
    cached, pages = resident_pages(pack)
    assert cached == pages  # just written: all of it in memory
    spare = SpareFile(repo / ".git")
    for name, (data, pointer) in files.items():
        worktree.place_over_pointer(store, repo, name, pointer, write_pointer(repo / name, pointer), spare=spare)
        assert (repo / name).read_bytes() == data
    # All but the last 16 MiB placed (their writeback might still be running) are gone.
    size = pack.stat().st_size
    cached, pages = resident_pages(pack, 0, size - 18 * 1024 * 1024)
    assert cached <= pages // 20, (cached, pages)
    cached, pages = resident_pages(pack, size - 15 * 1024 * 1024, size)
    assert cached == pages


@pytest.mark.parametrize("verified", [False, True], ids=["hashed", "kernel-copied"])
def test_an_object_shorter_than_the_spare_s_old_text_is_cut_to_its_size(repo: Path, verified: bool) -> None:
    """The spare is not emptied before each copy (see SpareFile.open): the old pointer
    text beyond a small object's end must not survive."""
    store = Store(repo / ".git" / "mlx")
    spare = SpareFile(repo / ".git")
    for name, data in (("big.bin", RNG.randbytes(50_000)), ("tiny.bin", b"12345"), ("empty.bin", b"")):
        pointer = store.insert_stream(io.BytesIO(data))
        text = write_pointer(repo / name, pointer)
        st = worktree.place_over_pointer(store, repo, name, pointer, text, verified=verified, spare=spare)
        assert st is not None and st.st_size == len(data)
        assert (repo / name).read_bytes() == data


def test_a_replaced_file_that_cannot_be_put_back_is_named_and_never_deleted(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(repo / ".git" / "mlx")
    ((data, pointer),) = stored(store, 1, 20_000).values()
    write_pointer(repo / "a.bin", pointer)
    git_wrote = os.stat(repo / "a.bin")
    spare = SpareFile(repo / ".git")
    fd = spare.open(git_wrote.st_dev, 0o644)
    assert fd is not None
    os.write(fd, data)
    os.close(fd)
    (repo / "a.bin").unlink()
    (repo / "a.bin").write_bytes(b"the user's edit")
    calls = []
    real = oscalls.exchange

    def exchange_once(a: str, b: str) -> None:
        calls.append((a, b))
        if len(calls) > 1:
            raise OSError(5, "Input/output error")
        real(a, b)

    monkeypatch.setattr(oscalls, "exchange", exchange_once)
    with pytest.raises(MlxError, match="could not be put back") as raised:
        spare.swap(str(repo / "a.bin"), git_wrote)
    assert spare.path in raised.value.hint
    spare.remove()
    assert Path(spare.path).read_bytes() == b"the user's edit"
