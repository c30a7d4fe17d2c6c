"""objectfile.sweep_temps: what an interrupted placement left beside files goes; what a live
placement or the user owns stays."""

from __future__ import annotations

import os
from pathlib import Path

from gitmlx.checkout.objectfile import sweep_temps
from tests.support.trials import dead_pid


def test_sweep_removes_leftovers_of_gone_writers_only(tmp_path: Path) -> None:
    gone = dead_pid()
    names = {
        f".model.bin.mlx-{gone}-0123abcd": False,  # writer gone: removed
        ".model.bin.mlx-0123456789ab": False,  # older versions' name, no pid: removed
        f".other.bin.mlx-{os.getpid()}-0123abcd": True,  # a live placement: kept
        "model.bin": True,
        ".model.bin.mlx-notes": True,  # not our pattern: the user's
        "model.bin.mlx-123-0123abcd": True,  # no leading dot: not ours
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")

    sweep_temps(tmp_path)

    assert {n: (tmp_path / n).exists() for n in names} == names


def test_sweep_of_a_missing_directory_is_a_no_op(tmp_path: Path) -> None:
    sweep_temps(tmp_path / "nope")
