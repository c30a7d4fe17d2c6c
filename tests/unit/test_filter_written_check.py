"""gitwrite.GitWriteCheck (through FilterSession): a file git could not finish writing (a full disk, git
killed mid-write) gets its pointer back at git's next message, and nothing else is touched."""

from __future__ import annotations

import io
import os
import random
import subprocess
from pathlib import Path

import pytest

from gitmlx.checkout import filters
from gitmlx.checkout.handoff import UNRESTORED_FILE, take_paths
from gitmlx.checkout.session import FilterSession
from gitmlx.format.pointer import Pointer
from tests.support.content import Sink
from tests.support.trials import dead_pid

DATA = random.Random(0).randbytes(300_000)


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FilterSession, Pointer, list[str]]:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GIT_MLX_DIRECT_PLACE", "0")  # git writes the content (by default it gets pointers)
    errors: list[str] = []
    s = FilterSession(error=lambda message, hint: errors.append(f"{message}; {hint}"))
    pointer = s.ctx.store.insert_stream(io.BytesIO(DATA))
    return s, pointer, errors


def deliver(s: FilterSession, path: str, pointer: Pointer) -> bytes:
    """What a checkout's smudge request for `path` gives git (the object is local)."""
    body = s.smudge(filters.Prefixed(pointer.encode(), io.BytesIO()), path, can_delay=True)
    sink = Sink()
    body(sink)  # type: ignore[operator]
    return bytes(sink.data)


@pytest.mark.parametrize("written", [0, 1, 150_000, len(DATA) - 1])
def test_a_short_prefix_left_by_git_gets_its_pointer_back(session, written: int) -> None:
    s, pointer, errors = session
    assert deliver(s, "model.bin", pointer) == DATA
    target = s.ctx.paths.work_tree / "model.bin"
    target.write_bytes(DATA[:written])  # what git managed to write before the disk filled
    os.chmod(target, 0o755)

    s.close()  # git's next message (here: closing the pipe)

    assert target.read_bytes() == pointer.encode()
    assert os.stat(target).st_mode & 0o777 == 0o755
    assert take_paths(s.ctx.paths.git_dir, UNRESTORED_FILE) == ["model.bin"]
    assert len(errors) == 1 and "'model.bin'" in errors[0] and "git mlx checkout" in errors[0]
    assert not [n for n in os.listdir(target.parent) if ".mlx-" in n], "no temporary file left"


def test_the_check_runs_at_the_next_request_before_anything_else(session) -> None:
    s, pointer, errors = session
    deliver(s, "a.bin", pointer)
    (s.ctx.paths.work_tree / "a.bin").write_bytes(DATA[:10])

    deliver(s, "b.bin", pointer)

    assert (s.ctx.paths.work_tree / "a.bin").read_bytes() == pointer.encode()
    assert len(errors) == 1 and "'a.bin'" in errors[0]


@pytest.mark.parametrize(
    "left",
    [DATA, b"not a prefix of the object", DATA[:1000] + b"x", None],
    ids=["complete", "other-content", "diverges", "absent"],
)
def test_anything_but_a_short_prefix_is_left_alone(session, left: bytes | None) -> None:
    s, pointer, errors = session
    deliver(s, "model.bin", pointer)
    target = s.ctx.paths.work_tree / "model.bin"
    if left is not None:
        target.write_bytes(left)

    s.close()

    assert (target.read_bytes() if left is not None else None) == left
    assert not errors
    assert take_paths(s.ctx.paths.git_dir, UNRESTORED_FILE) == []


def test_outside_a_checkout_nothing_is_checked(session) -> None:
    s, pointer, errors = session
    body = s.smudge(filters.Prefixed(pointer.encode(), io.BytesIO()), "model.bin", can_delay=False)
    body(Sink())  # type: ignore[operator]  # git diff / show / archive: the file is not written
    target = s.ctx.paths.work_tree / "model.bin"
    target.write_bytes(DATA[:10])  # the user's own short file, say

    s.close()

    assert target.read_bytes() == DATA[:10]
    assert not errors


# -- claimed_paths: a list a killed process had taken is not lost ----------------------------


def test_a_claim_left_by_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    from gitmlx.checkout.handoff import claimed_paths, record_path

    record_path(tmp_path, "mlx-deferred", "new.bin")
    (tmp_path / f"mlx-deferred.{dead_pid()}").write_bytes(b"left.bin\0other.bin\0")
    (tmp_path / f"mlx-deferred.{os.getppid()}").write_bytes(b"someone-elses.bin\0")  # alive: theirs

    with claimed_paths(tmp_path, "mlx-deferred") as paths:
        assert paths == ["left.bin", "new.bin", "other.bin"]
        assert (tmp_path / f"mlx-deferred.{os.getpid()}").exists(), "kept while being worked on"

    assert sorted(p.name for p in tmp_path.iterdir()) == [f"mlx-deferred.{os.getppid()}"]


def test_a_claim_survives_a_failure_inside_the_block(tmp_path: Path) -> None:
    from gitmlx.checkout.handoff import claimed_paths, record_path

    record_path(tmp_path, "mlx-deferred", "a.bin")
    with pytest.raises(RuntimeError), claimed_paths(tmp_path, "mlx-deferred"):
        raise RuntimeError("killed, as far as the list is concerned")

    assert (tmp_path / f"mlx-deferred.{os.getpid()}").read_bytes() == b"a.bin\0"


def test_a_zombie_counts_as_dead() -> None:
    from gitmlx.checkout.objectfile import process_alive

    proc = subprocess.Popen(["true"])
    try:
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
        assert not process_alive(proc.pid)
    finally:
        proc.wait()
    assert process_alive(os.getpid())
