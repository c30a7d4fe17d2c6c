"""Crash logs go to a folder of the user's own, created 0700 and checked, and are opened
so that nothing planted there can redirect them (no symlink followed, no file reused)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gitmlx import ui


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "gitmlx" / "logs"


def crash() -> str:
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        return ui.write_crash_log(exc)


def test_a_crash_log_is_private_to_the_user(state: Path) -> None:
    log = Path(crash())
    assert log.parent == state and "RuntimeError: boom" in log.read_text()
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600


def test_a_planted_symlink_folder_is_not_followed(state: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    state.parent.mkdir(parents=True)
    state.symlink_to(elsewhere)
    said = crash()
    assert said.startswith("(no crash log:") and "not a folder" in said
    assert list(elsewhere.iterdir()) == []


def test_a_folder_others_may_write_is_refused(state: Path) -> None:
    state.mkdir(parents=True)
    state.chmod(0o777)
    assert "others may write" in crash()
    assert list(state.iterdir()) == []


def test_a_planted_file_under_the_log_name_is_never_written_through(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui.time, "strftime", lambda fmt: "20260101T000000")
    target = tmp_path / "victim"
    target.write_text("precious")
    state.mkdir(parents=True, mode=0o700)
    (state / f"crash-20260101T000000-{os.getpid()}.log").symlink_to(target)
    assert crash().startswith("(no crash log:")
    assert target.read_text() == "precious"
