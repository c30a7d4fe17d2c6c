"""The pointer record's file (docs/local-store.md, "Pointer record"): blob ids as git
computes them (git is the oracle), lines checked before use, rotation past its limit."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from gitmlx.format.pointer import Pointer
from gitmlx.store import pointer_record
from gitmlx.store.pointer_record import PointerRecordWriter, lookup
from tests.support.commands import git


def _pointer(n: int) -> Pointer:
    return Pointer(hashlib.sha256(b"%d" % n).hexdigest(), n)


@pytest.mark.parametrize("object_format", ["sha1", "sha256"])
def test_recorded_blob_ids_are_the_ids_git_gives_the_pointer_text(tmp_path: Path, object_format: str) -> None:
    git("init", "-q", f"--object-format={object_format}", "repo", cwd=tmp_path)
    pointers = [_pointer(n) for n in (0, 7, 131072)]
    writer = PointerRecordWriter(tmp_path, object_format)
    for p in pointers:
        writer.add(p.encode(), p)
    writer.close()

    ids = [git("hash-object", "--stdin", cwd=tmp_path / "repo", input=p.encode()).stdout.strip() for p in pointers]

    assert lookup(tmp_path, set(ids)) == dict(zip(ids, pointers, strict=True))


def test_lines_that_fail_their_check_are_skipped_and_the_true_line_still_counts(tmp_path: Path) -> None:
    a, b = _pointer(1), _pointer(2)
    a_id, b_id = (pointer_record.blob_id(p.encode(), "sha1") for p in (a, b))
    (tmp_path / pointer_record.FILE_NAME).write_bytes(
        f"{a_id} {b.oid} {b.size}\n{a_id[:30]}{b_id} {b.oid} {b.size}\n{b_id} {b.oid} +2\n{a_id} {a.oid} {a.size}\n"
        f"{b_id} {b.oid} {b.size}".encode()  # torn: no LF
    )

    assert lookup(tmp_path, {a_id, b_id}) == {a_id: a}


def test_the_record_rotates_past_its_limit_and_both_files_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pointer_record, "ROTATE_AT", 5000)
    pointers = [_pointer(n) for n in range(300)]
    writer = PointerRecordWriter(tmp_path, "sha1")
    for p in pointers:
        writer.add(p.encode(), p)
    writer.close()
    ids = [pointer_record.blob_id(p.encode(), "sha1") for p in pointers]

    found = lookup(tmp_path, set(ids))

    files = [tmp_path / pointer_record.FILE_NAME, tmp_path / pointer_record.OLD_NAME]
    assert sum(f.stat().st_size for f in files if f.exists()) <= 2 * (5000 + pointer_record.WRITE_MAX)
    assert ids[0] not in found and ids[-1] in found  # the oldest lines went with a rotated file
    assert all(found[i] == p for i, p in zip(ids, pointers, strict=True) if i in found)


def test_writers_in_several_processes_at_once_lose_no_line(tmp_path: Path) -> None:
    """Filter processes of concurrent git commands append to one record: O_APPEND and
    whole-line writes keep every line whole."""
    script = (
        "import hashlib, sys\nfrom pathlib import Path\n"
        "from gitmlx.format.pointer import Pointer\n"
        "from gitmlx.store.pointer_record import PointerRecordWriter\n"
        "w = PointerRecordWriter(Path(sys.argv[1]), 'sha1')\n"
        "for n in range(int(sys.argv[2]), int(sys.argv[2]) + 1500):\n"
        "    p = Pointer(hashlib.sha256(b'%d' % n).hexdigest(), n)\n"
        "    w.add(p.encode(), p)\n"
        "w.close()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(k * 1500)]) for k in range(4)]
    assert all(proc.wait(timeout=60) == 0 for proc in procs)
    pointers = [_pointer(n) for n in range(6000)]
    ids = {pointer_record.blob_id(p.encode(), "sha1"): p for p in pointers}

    assert lookup(tmp_path, set(ids)) == ids


def test_lines_cut_by_the_backward_read_blocks_are_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is read last line first, a block at a time: every line, wherever the
    blocks cut it, and a damaged line in between, give the same answers as a forward read
    (blocks of 7, 64 and 1,000 bytes: shorter than a line, about one, many lines)."""
    pointers = [_pointer(n) for n in range(200)]
    ids = [pointer_record.blob_id(p.encode(), "sha1") for p in pointers]
    lines = [f"{i} {p.oid} {p.size}\n".encode() for i, p in zip(ids, pointers, strict=True)]
    lines.insert(50, b"not a line at all, and no newline either " * 3 + b"\n")
    (tmp_path / pointer_record.FILE_NAME).write_bytes(b"".join(lines))
    for block in (7, 64, 1000):
        monkeypatch.setattr(pointer_record, "READ_BLOCK", block)
        assert lookup(tmp_path, set(ids)) == dict(zip(ids, pointers, strict=True))
        assert lookup(tmp_path, {ids[0], ids[-1]}) == {ids[0]: pointers[0], ids[-1]: pointers[-1]}
