"""The filter's checkout progress: a tqdm bar in a terminal, a few plain lines in a log,
nothing with GIT_MLX_NO_PROGRESS. GIT_MLX_PROGRESS_DELAY=0 shows it from the start (by
default nothing shows in the first 2 s, as with git's own progress)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.commands import git, run_in_pty
from tests.support.content import MIB
from tests.support.repos import Repos, add_commit, assert_content, clone

BAR = re.compile(rb"gitmlx checkout:\s+(\d+)%\|[^|]*\| *([\d.]+\w?)/([\d.]+\w?) \[[^]]*, (\d+)/(\d+) files\]")
LINE = re.compile(r"^gitmlx checkout: \d+% \(\d+/\d+ files, .+ of .+, .+/s\)$")


def _published(repos: Repos, files: int, size: int) -> dict[str, str]:
    shas = add_commit(repos.work, {f"m{i}.bin": size for i in range(files)})
    git("push", "-q", "origin", "main", cwd=repos.work)
    return shas


def _clone_in_pty(repos: Repos, dest: Path, monkeypatch: pytest.MonkeyPatch) -> bytes:
    monkeypatch.setenv("GIT_MLX_PROGRESS_DELAY", "0")
    status, out = run_in_pty(["git", "clone", repos.remote, dest], cwd=dest.parent)
    assert status == 0, out.decode(errors="replace")
    return out


def _bars(out: bytes) -> list[tuple[int, str]]:
    return [(int(m[1]), m[2].decode()) for m in BAR.finditer(out)]


def test_a_clone_in_a_terminal_draws_a_gitmlx_bar_below_gits_line(repos: Repos, sealed, monkeypatch) -> None:
    shas = _published(repos, 4, 4 * MIB)
    out = _clone_in_pty(repos, sealed.root / "clone", monkeypatch)
    bars = _bars(out)
    assert bars, out.decode(errors="replace")
    # Drawn one line below the cursor, which goes back to the start of git's line after.
    assert b"\n\rgitmlx checkout:" in out and b"\x1b[A\r" in out
    for path, sha in shas.items():
        assert_content(sealed.root / "clone", path, sha)


@pytest.mark.slow
def test_a_200_mib_clone_in_a_terminal_shows_a_moving_bar(repos: Repos, sealed, monkeypatch) -> None:
    _published(repos, 4, 50 * MIB)
    bars = _bars(_clone_in_pty(repos, sealed.root / "clone", monkeypatch))
    assert len({done for _, done in bars}) >= 3, bars


def test_a_clone_into_a_log_prints_at_most_12_plain_lines(repos: Repos, sealed) -> None:
    _published(repos, 4, 8 * MIB)
    result = git("clone", repos.remote, sealed.root / "clone", cwd=sealed.root, env={"GIT_MLX_PROGRESS_DELAY": "0"})
    # git may draw its own "Updating files" progress with \r: split on both
    lines = [line for line in re.split(r"[\r\n]", result.stderr) if line.startswith("gitmlx checkout:")]
    assert 2 <= len(lines) <= 12, result.stderr
    assert all(LINE.match(line) for line in lines[:-1]), lines
    assert re.match(r"^gitmlx checkout: done, 4/4 files, 32\.0 MiB in [\d.]+ s$", lines[-1]), lines
    assert "\x1b" not in result.stderr


def test_no_progress_silences_bar_and_lines(repos: Repos, sealed, monkeypatch) -> None:
    _published(repos, 2, 2 * MIB)
    monkeypatch.setenv("GIT_MLX_NO_PROGRESS", "1")
    out = _clone_in_pty(repos, sealed.root / "tty", monkeypatch)
    assert b"gitmlx checkout" not in out
    logged = git("clone", repos.remote, sealed.root / "log", cwd=sealed.root, env={"GIT_MLX_PROGRESS_DELAY": "0"})
    assert "gitmlx checkout" not in logged.stderr


def test_git_clone_quiet_silences_it_too(repos: Repos, sealed, monkeypatch) -> None:
    _published(repos, 2, 2 * MIB)
    monkeypatch.setenv("GIT_MLX_PROGRESS_DELAY", "0")
    status, out = run_in_pty(["git", "clone", "-q", repos.remote, sealed.root / "tty"], cwd=sealed.root)
    assert status == 0 and b"gitmlx checkout" not in out, out
    logged = clone(repos.remote, sealed.root / "log")  # `git clone -q`
    assert "gitmlx checkout" not in logged.stderr


def test_by_default_a_quick_checkout_prints_nothing(repos: Repos, sealed) -> None:
    _published(repos, 2, 64 * 1024)
    result = git("clone", repos.remote, sealed.root / "clone", cwd=sealed.root)
    assert "gitmlx" not in result.stderr
