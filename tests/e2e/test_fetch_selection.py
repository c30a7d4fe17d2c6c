"""The command line beats configuration, and a restore never does nothing in silence:
`-I` fetches what it names even where `mlx.fetchexclude` (here in the sealed HOME's
global config) excludes it, `-X` adds to the configured excludes, every skipped file is
counted with its reason, and a `-I` naming no tracked file is an error. Patterns are
git's (character classes, brackets) as `track` writes them."""

from __future__ import annotations

from tests.e2e.test_partial_fetch import is_pointer, publish
from tests.support.commands import assert_no_traceback, git, mlx
from tests.support.content import write_random
from tests.support.repos import Repos, assert_clean_worktree, assert_content, clone, commit_all, local_store
from tests.support.stores import stored_oids

GLOBAL = "mlx.fetchexclude=data/* (git config --global)"


def _clone_excluding_data(repos: Repos, sealed) -> tuple[dict[str, str], object]:
    shas = publish(repos)
    git("config", "--global", "mlx.fetchexclude", "data/*", cwd=sealed.root)
    dest = sealed.root / "clone"
    assert_no_traceback(clone(repos.remote, dest))
    assert is_pointer(dest / "data" / "train.bin") and is_pointer(dest / "data" / "sub" / "eval.bin")
    return shas, dest


def test_pull_include_fetches_what_a_global_fetchexclude_excludes(repos: Repos, sealed) -> None:
    shas, dest = _clone_excluding_data(repos, sealed)

    narrowed = mlx("pull", "-I", "data/*", "-X", "data/sub", cwd=dest)
    assert "1 file(s) matched -I but are excluded by -X 'data/sub'" in narrowed.stderr, narrowed
    assert f"1 file(s) excluded by {GLOBAL} fetched anyway: -I names them" in narrowed.stderr, narrowed
    assert_content(dest, "data/train.bin", shas["data/train.bin"])
    assert is_pointer(dest / "data" / "sub" / "eval.bin")

    result = mlx("pull", "-I", "data/*", cwd=dest)
    assert_no_traceback(result)
    assert_content(dest, "data/sub/eval.bin", shas["data/sub/eval.bin"])
    assert_clean_worktree(dest)


def test_pull_exclude_adds_to_the_configured_excludes(repos: Repos, sealed) -> None:
    shas, dest = _clone_excluding_data(repos, sealed)
    (dest / "models" / "old.bin").unlink()
    git("checkout", "--", "models/old.bin", env={"GIT_MLX_SKIP_SMUDGE": "1"}, cwd=dest)
    assert is_pointer(dest / "models" / "old.bin")

    result = mlx("pull", "-X", "models/old.bin", cwd=dest)
    assert "1 file(s) skipped: excluded by -X 'models/old.bin'" in result.stderr, result
    assert f"2 file(s) skipped: excluded by {GLOBAL}" in result.stderr, result
    assert is_pointer(dest / "models" / "old.bin") and is_pointer(dest / "data" / "train.bin")
    assert_content(dest, "models/best.bin", shas["models/best.bin"])


def test_a_pull_whose_patterns_match_nothing_says_so(repos: Repos, sealed) -> None:
    _, dest = _clone_excluding_data(repos, sealed)
    before = stored_oids(local_store(dest))

    result = mlx("pull", "-I", "dat/*", "-I", "models", cwd=dest, check=False)
    assert result.returncode == 1, result
    assert "-I 'dat/*' matches no tracked file in HEAD" in result.stderr, result
    assert stored_oids(local_store(dest)) == before  # like a git pathspec error: nothing done

    git("config", "mlx.fetchexclude", "*", cwd=dest)
    everything_excluded = mlx("pull", cwd=dest)
    assert "4 file(s) skipped: excluded by mlx.fetchexclude=* (git config --local)" in everything_excluded.stderr
    assert stored_oids(local_store(dest)) == before

    unknown = mlx("checkout", "nothing.bin", cwd=dest, check=False)
    assert unknown.returncode == 1 and "'nothing.bin' matches no tracked file" in unknown.stderr, unknown


def test_pull_include_reads_patterns_as_git_does(repos: Repos, sealed) -> None:
    spaced = write_random(repos.work / "models" / "my model.bin", 50_000, "spaced")
    other = write_random(repos.work / "models" / "other.bin", 50_000, "other")
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})

    assert_no_traceback(mlx("pull", "-I", "models/my[[:space:]]model.bin", cwd=dest))
    assert_content(dest, "models/my model.bin", spaced)
    assert is_pointer(dest / "models" / "other.bin")
    assert_no_traceback(mlx("pull", "-I", "models/[o]ther.bin", cwd=dest))
    assert_content(dest, "models/other.bin", other)
    assert_clean_worktree(dest)
