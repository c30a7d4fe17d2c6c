"""GIT_MLX_TRACE with a directory remote: remote requests, store decisions and filter
requests are logged; with tracing off the filter does not even load `logging`."""

from __future__ import annotations

import subprocess
import sys

from tests.support.commands import git
from tests.support.content import write_random
from tests.support.repos import Repos


def test_trace_logs_filter_requests_store_decisions_and_directory_remote_requests(repos: Repos) -> None:
    write_random(repos.work / "a.bin", 5000, "a")
    added = git("add", "a.bin", cwd=repos.work, env={"GIT_MLX_TRACE": "1"})
    assert "filter: clean 'a.bin'" in added.stderr
    assert "store: object " in added.stderr
    git("commit", "-q", "-m", "a", cwd=repos.work)
    pushed = git("push", "-q", "origin", "main", cwd=repos.work, env={"GIT_MLX_TRACE": "true"})
    puts = [line for line in pushed.stderr.splitlines() if " remote: dir PUT " in line]
    assert any("packs/" in line and ", 5000 bytes: ok, " in line for line in puts), pushed.stderr
    assert all(line.endswith(" ms") for line in puts)


def test_a_relative_trace_path_is_refused_with_a_warning(repos: Repos) -> None:
    write_random(repos.work / "a.bin", 100, "a")
    added = git("add", "a.bin", cwd=repos.work, env={"GIT_MLX_TRACE": "relative.log"})
    assert "warning: GIT_MLX_TRACE='relative.log' is not an absolute path; not tracing" in added.stderr
    assert not (repos.work / "relative.log").exists()


def test_tracing_off_loads_no_logging_in_the_filter(sealed) -> None:
    code = (
        "import sys, gitmlx.commands.filter_process, gitmlx.remotes.local, gitmlx.store.writer\n"
        "print('logging' in sys.modules)"
    )
    env = {k: v for k, v in sealed.env.items() if k != "GIT_MLX_TRACE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
