"""FilterSession's own placement (the default, mlx.directplace=1): in a checkout git gets
each file's pointer, and once git has written it the filter renames the verified content
over it. Driven here without git: the test plays git's part of the protocol (answers are
written to the work tree, then the next message is sent)."""

from __future__ import annotations

import io
import os
import random
import subprocess
from pathlib import Path

import pytest

from gitmlx.checkout import filters
from gitmlx.checkout.handoff import DEFERRED_FILE, UNRESTORED_FILE, take_paths
from gitmlx.checkout.session import FilterSession
from gitmlx.format.pointer import Pointer
from gitmlx.git.filter_protocol import DELAYED
from tests.support.content import Sink

RNG = random.Random(1)
DATA = {name: RNG.randbytes(200_000 + i) for i, name in enumerate(("a.bin", "b.bin", "c.bin"))}


class Git:
    """git's side of one checkout: requests, writes each answer to the work tree."""

    def __init__(self, session: FilterSession) -> None:
        self.s = session
        self.work_tree: Path = session.ctx.paths.work_tree  # type: ignore[assignment]

    def smudge(self, path: str, blob: bytes) -> bool:
        """Ask for `path`; write the answer like git does. False when it was delayed."""
        body = self.s.smudge(filters.Prefixed(blob, io.BytesIO()), path, can_delay=True)
        if body is DELAYED:
            return False
        sink = Sink()
        body(sink)  # type: ignore[operator]
        target = self.work_tree / path
        target.unlink(missing_ok=True)
        target.write_bytes(bytes(sink.data))
        self.s.idle()
        return True

    def finish(self, blobs: dict[str, bytes]) -> None:
        """list_available_blobs until it is empty, fetching what it lists."""
        while ready := self.s.list_available():
            for path in ready:
                assert self.smudge(path, b""), path
                blobs.pop(path, None)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FilterSession, dict[str, Pointer], list[str]]:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("GIT_MLX_DIRECT_PLACE", raising=False)
    errors: list[str] = []
    s = FilterSession(error=lambda message, hint: errors.append(f"{message}; {hint}"))
    pointers = {name: s.ctx.store.insert_stream(io.BytesIO(data)) for name, data in DATA.items()}
    s.ctx.store.finish_pack()
    return s, pointers, errors


def test_git_gets_pointers_and_each_file_its_content(setup) -> None:
    s, pointers, errors = setup
    git = Git(s)
    answered = [git.smudge(name, p.encode()) for name, p in pointers.items()]
    assert answered == [False, True, True]  # the first waits, so that git ends with list_available_blobs
    for name in ("b.bin", "c.bin"):  # git has written b.bin's pointer, then c.bin's
        assert (git.work_tree / name).read_bytes() in (pointers[name].encode(), DATA[name])
    os.chmod(git.work_tree / "c.bin", 0o755)
    claim = s.ctx.paths.git_dir / f"{DEFERRED_FILE}.{os.getpid()}"
    assert sorted(claim.read_bytes().split(b"\0")[:-1]) == [b"a.bin", b"b.bin", b"c.bin"]

    git.finish({})

    for name, data in DATA.items():
        assert (git.work_tree / name).read_bytes() == data, name
    assert os.stat(git.work_tree / "c.bin").st_mode & 0o777 == 0o755
    assert not claim.exists(), "the claim outlived the checkout"
    assert not [n for n in os.listdir(git.work_tree) if ".mlx-" in n], "a temporary file was left"
    assert errors == []
    s.close()


def test_a_file_that_no_longer_holds_its_pointer_is_left_alone(setup) -> None:
    s, pointers, errors = setup
    git = Git(s)
    git.smudge("a.bin", pointers["a.bin"].encode())
    git.smudge("b.bin", pointers["b.bin"].encode())  # placed at git's next message
    mine = b"x" * len(pointers["b.bin"].encode())  # the user's own bytes, a pointer's length
    (git.work_tree / "b.bin").write_bytes(mine)

    git.finish({})

    assert (git.work_tree / "b.bin").read_bytes() == mine
    assert (git.work_tree / "a.bin").read_bytes() == DATA["a.bin"]
    assert errors == []


def test_a_corrupt_local_object_is_quarantined_and_the_file_keeps_its_pointer(setup) -> None:
    s, pointers, errors = setup
    store = s.ctx.store
    with store.open(pointers["b.bin"].oid) as f:
        good = f.read()
    where = store.locate(pointers["b.bin"].oid)
    if isinstance(where, str):
        os.chmod(where, 0o644)
        with open(where, "r+b") as f:
            f.write(bytes([good[0] ^ 1]))
    else:
        fd, offset, _ = where
        path = next(p.path for p in store.iter_packs() if p.fd == fd)
        with open(path, "r+b") as f:
            f.seek(offset)
            f.write(bytes([good[0] ^ 1]))
    git = Git(s)
    for name, p in pointers.items():
        git.smudge(name, p.encode())

    git.finish({})  # no remote to fetch a good copy from

    assert (git.work_tree / "b.bin").read_bytes() == pointers["b.bin"].encode()
    assert (git.work_tree / "a.bin").read_bytes() == DATA["a.bin"]
    assert (git.work_tree / "c.bin").read_bytes() == DATA["c.bin"]
    assert not store.has(pointers["b.bin"].oid), "the corrupt object kept its valid name"
    assert (store.root / "bad" / pointers["b.bin"].oid).is_file()
    assert len(errors) == 1 and "'b.bin'" in errors[0] and "corrupt" in errors[0], errors
    assert take_paths(s.ctx.paths.git_dir, UNRESTORED_FILE) == ["b.bin"]


def test_a_path_written_again_gets_its_last_version(setup) -> None:
    """One command checking a path out twice (stash does): the first placement must not
    land over the second pointer git writes."""
    s, pointers, errors = setup
    git = Git(s)
    git.smudge("a.bin", pointers["a.bin"].encode())  # delayed
    s.idle = lambda: None  # type: ignore[method-assign]  # place nothing early
    git.smudge("b.bin", pointers["b.bin"].encode())
    del s.idle

    # The same path, another object: git writes its answer while this process may be
    # placing, so the first version must be in place before the answer goes out.
    body = s.smudge(filters.Prefixed(pointers["c.bin"].encode(), io.BytesIO()), "b.bin", can_delay=True)
    assert (git.work_tree / "b.bin").read_bytes() == DATA["b.bin"]
    sink = Sink()
    body(sink)  # type: ignore[operator]
    (git.work_tree / "b.bin").unlink()
    (git.work_tree / "b.bin").write_bytes(bytes(sink.data))

    git.finish({})

    assert (git.work_tree / "b.bin").read_bytes() == DATA["c.bin"]
    assert errors == []


def test_a_missing_object_without_a_remote_leaves_the_pointer_and_says_so(setup) -> None:
    s, pointers, errors = setup
    git = Git(s)
    missing = Pointer("ab" * 32, 12345)
    git.smudge("a.bin", pointers["a.bin"].encode())
    git.smudge("gone.bin", missing.encode())

    git.finish({})

    assert (git.work_tree / "gone.bin").read_bytes() == missing.encode()
    assert (git.work_tree / "a.bin").read_bytes() == DATA["a.bin"]
    assert len(errors) == 1 and "'gone.bin'" in errors[0], errors
    assert take_paths(s.ctx.paths.git_dir, UNRESTORED_FILE) == ["gone.bin"]


def test_with_directplace_0_git_gets_the_content(setup, monkeypatch: pytest.MonkeyPatch) -> None:
    _, pointers, _ = setup
    monkeypatch.setenv("GIT_MLX_DIRECT_PLACE", "0")
    git = Git(FilterSession())
    assert git.smudge("a.bin", pointers["a.bin"].encode())
    assert (git.work_tree / "a.bin").read_bytes() == DATA["a.bin"]


def test_temporary_files_of_a_killed_placement_are_swept(setup) -> None:
    s, pointers, _ = setup
    git = Git(s)
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that ran and is gone
    leftover = git.work_tree / f".a.bin.mlx-{dead.pid}-00000002"
    leftover.write_bytes(b"half a file")
    live = git.work_tree / f".a.bin.mlx-{os.getppid()}-00000003"
    live.write_bytes(b"another process at work")
    for name, p in pointers.items():
        git.smudge(name, p.encode())

    git.finish({})

    assert not leftover.exists()
    assert live.exists()
