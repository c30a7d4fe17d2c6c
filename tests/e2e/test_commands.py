"""The everyday commands' outputs (track, untrack, ls-files, status, env, pointer),
clean idempotence (guarantee 2) and exit statuses (0 / 1 / 2)."""

from __future__ import annotations

import re

import pytest

from tests.support.commands import assert_no_traceback, git, mlx, run
from tests.support.content import write_random
from tests.support.formats import pointer_text
from tests.support.repos import (
    Repos,
    assert_clean_worktree,
    assert_content,
    assert_pointer,
    blob_at,
    clone,
    commit_all,
    local_store,
    make_repo_with_bare_remote,
)
from tests.support.stores import stored_oids

ATTRS = "filter=mlx diff=mlx merge=mlx -text"
LFS_VERSION = "https://git-lfs.github.com/spec/v1"


def check_attr(repo, path: str) -> dict[str, str]:
    out = git("check-attr", "filter", "diff", "merge", "text", "--", path, cwd=repo).stdout
    return {line.split(": ")[1]: line.split(": ")[2] for line in out.splitlines()}


def test_track_writes_one_attributes_line_per_pattern_and_lists_them(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root, patterns=[])
    first = mlx("track", "*.safetensors", "data set/*.npy", cwd=repos.work)
    again = mlx("track", "*.safetensors", cwd=repos.work)
    listed = mlx("track", cwd=repos.work)

    assert (repos.work / ".gitattributes").read_text() == (f"*.safetensors {ATTRS}\ndata[[:space:]]set/*.npy {ATTRS}\n")
    assert 'tracking "*.safetensors"' in first.stdout
    assert "already tracked" in again.stdout
    assert listed.stdout.splitlines() == ["*.safetensors (.gitattributes)", "data[[:space:]]set/*.npy (.gitattributes)"]
    assert check_attr(repos.work, "m/x.safetensors") == {
        "filter": "mlx",
        "diff": "mlx",
        "merge": "mlx",
        "text": "unset",
    }
    assert check_attr(repos.work, "data set/a.npy")["filter"] == "mlx"
    assert check_attr(repos.work, "x.txt")["filter"] == "unspecified"


def test_track_from_a_subfolder_anchors_the_pattern_there(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root, patterns=[])
    (repos.work / "sub").mkdir()
    mlx("track", "*.pt", cwd=repos.work / "sub")

    assert f"sub/*.pt {ATTRS}" in (repos.work / ".gitattributes").read_text()
    assert check_attr(repos.work, "sub/m.pt")["filter"] == "mlx"
    assert check_attr(repos.work, "m.pt")["filter"] == "unspecified"


def test_untrack_removes_only_the_named_pattern_and_warns_about_unknown_ones(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root, patterns=["*.bin", "*.pt"])
    result = mlx("untrack", "*.bin", "*.nope", cwd=repos.work)

    assert (repos.work / ".gitattributes").read_text() == f"*.pt {ATTRS}\n"
    assert 'untracking "*.bin"' in result.stdout
    assert 'warning: "*.nope" was not tracked' in result.stderr
    assert check_attr(repos.work, "a.bin")["filter"] == "unspecified"


CONFIG_FILES = (".gitattributes", ".gitignore", ".gitmodules", ".mailmap", ".mlxconfig", ".lfsconfig")


def test_track_everything_keeps_gits_configuration_files_plain_through_a_clone(sealed) -> None:
    repos = make_repo_with_bare_remote(sealed.root, patterns=[])
    result = mlx("track", "*", cwd=repos.work)
    assert "warning: the tracked patterns cover .gitattributes" in result.stderr
    for name in CONFIG_FILES:  # git is the oracle: nothing of gitmlx's applies to them
        assert check_attr(repos.work, name)["filter"] == "unspecified", name
        assert check_attr(repos.work, f"sub/{name}")["filter"] == "unspecified", name
    assert check_attr(repos.work, "model.bin")["filter"] == "mlx"
    (repos.work / ".gitignore").write_text("*.tmp\n")
    sha = write_random(repos.work / "model.bin", 40 * 1024, "model")
    commit_all(repos.work, "everything tracked")
    again = mlx("track", "*.bin", cwd=repos.work)  # a later pattern keeps the exclusions last
    assert "warning" not in again.stderr
    assert (repos.work / ".gitattributes").read_text().splitlines()[-1].startswith(".lfsconfig !filter")
    commit_all(repos.work, "more")
    for name in (".gitattributes", ".gitignore"):
        assert blob_at(repos.work, f"HEAD:{name}") == (repos.work / name).read_bytes(), f"{name} went in as a pointer"
    git("push", "-q", "origin", "main", cwd=repos.work)

    copy = sealed.root / "copy"
    cloned = clone(repos.remote, copy)
    assert_no_traceback(cloned)
    assert (copy / ".gitattributes").read_bytes() == (repos.work / ".gitattributes").read_bytes()
    assert_content(copy, "model.bin", sha)
    assert_clean_worktree(copy)
    assert "model.bin" in mlx("ls-files", cwd=copy).stdout  # the clone knows what is tracked
    assert_no_traceback(mlx("pull", cwd=copy))
    assert_clean_worktree(copy)


def test_clean_passes_configuration_files_through_whatever_the_attributes_say(sealed) -> None:
    """A hand-written `* filter=mlx` with no exclusion: git add still stores them as text."""
    repos = make_repo_with_bare_remote(sealed.root, patterns=[])
    (repos.work / ".gitattributes").write_text(f"* {ATTRS}\n")
    (repos.work / "sub").mkdir()
    (repos.work / "sub" / ".gitattributes").write_text(f"*.pt {ATTRS}\n")
    (repos.work / ".mlxconfig").write_text("[mlx]\n\tconcurrency = 2\n")
    write_random(repos.work / "w.bin", 2048, "w")
    commit_all(repos.work, "raw attributes")
    for name in (".gitattributes", "sub/.gitattributes", ".mlxconfig"):
        assert blob_at(repos.work, f"HEAD:{name}") == (repos.work / name).read_bytes(), f"{name} went in as a pointer"
    assert_pointer(repos.work, "w.bin", "HEAD")
    assert_clean_worktree(repos.work)
    listed = mlx("ls-files", cwd=repos.work).stdout  # nor are they listed as artifacts
    assert "w.bin" in listed and ".gitattributes" not in listed and ".mlxconfig" not in listed


def test_ls_files_marks_restored_files_and_pointer_only_files(repos: Repos, sealed) -> None:
    shas = {name: write_random(repos.work / name, 3 * 1024, name) for name in ("a.bin", "b.bin")}
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    mlx("pull", "-I", "a.bin", cwd=dest)

    plain = mlx("ls-files", cwd=dest).stdout.splitlines()
    sized = mlx("ls-files", "--size", cwd=dest).stdout.splitlines()

    assert plain == [f"{shas['a.bin'][:10]} * a.bin", f"{shas['b.bin'][:10]} - b.bin"]
    assert sized == [f"{shas['a.bin'][:10]} * a.bin (3.0 KiB)", f"{shas['b.bin'][:10]} - b.bin (3.0 KiB)"]
    assert_content(dest, "a.bin", shas["a.bin"])
    assert_pointer(dest, "b.bin")
    assert_clean_worktree(dest)


def status_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line and not line.startswith("\t"):
            current = line.rstrip(":")
            sections[current] = []
        elif line.startswith("\t") and line.strip() != "(none)":
            sections[current].append(line.strip())
    return sections


def test_status_follows_an_artifact_from_staged_to_unpushed_to_pushed(repos: Repos) -> None:
    sha = write_random(repos.work / "a.bin", 2048, "a")
    git("add", "a.bin", cwd=repos.work)
    staged = status_sections(mlx("status", cwd=repos.work).stdout)
    git("commit", "-q", "-m", "a", cwd=repos.work)
    unpushed = status_sections(mlx("status", cwd=repos.work).stdout)
    git("push", "-q", "origin", "main", cwd=repos.work)
    write_random(repos.work / "a.bin", 2048, "a, edited")
    pushed = status_sections(mlx("status", cwd=repos.work).stdout)

    described = f"a.bin ({sha[:10]}, 2.0 KiB)"
    assert staged["Artifacts staged for commit"] == [described]
    assert unpushed["Artifacts staged for commit"] == []
    assert unpushed["Artifacts committed but not pushed to origin"] == [described]
    assert pushed["Artifacts committed but not pushed to origin"] == []
    assert pushed["Artifacts modified, not staged"] == ["a.bin"]


def test_env_shows_the_store_and_where_the_artifact_remote_comes_from(repos: Repos) -> None:
    default = mlx("env", cwd=repos.work).stdout
    from_env = mlx("env", cwd=repos.work, env={"GIT_MLX_URL": "/somewhere/else"}).stdout

    assert f"local store: {local_store(repos.work)}" in default.splitlines()
    assert "git remote: origin" in default.splitlines()
    assert f"artifact remote: {repos.remote / 'mlx'}\t[default (beside git remote 'origin')]" in default
    assert "filter.mlx.process=git-mlx filter-process" in default
    assert "artifact remote: /somewhere/else\t[env GIT_MLX_URL]" in from_env


def test_pointer_prints_exactly_what_git_stores(repos: Repos) -> None:
    sha = write_random(repos.work / "-dash.bin", 12345, "dash")
    printed = mlx("pointer", "--", "-dash.bin", cwd=repos.work).stdout
    git("add", "--", "-dash.bin", cwd=repos.work)

    assert printed.encode() == pointer_text(sha, 12345)
    assert blob_at(repos.work, ":-dash.bin") == printed.encode()
    assert stored_oids(local_store(repos.work)) == {sha}


def test_clean_of_pointer_text_gives_the_same_pointer(repos: Repos) -> None:
    sha = write_random(repos.work / "a.bin", 5000, "a")
    git("add", "a.bin", cwd=repos.work)
    pointer = blob_at(repos.work, ":a.bin")
    (repos.work / "copy.bin").write_bytes(pointer)
    lfs = pointer_text(sha, 5000, LFS_VERSION)
    (repos.work / "lfs.bin").write_bytes(lfs)
    git("add", "copy.bin", "lfs.bin", cwd=repos.work)

    assert blob_at(repos.work, ":copy.bin") == pointer
    assert blob_at(repos.work, ":lfs.bin") == lfs
    assert stored_oids(local_store(repos.work)) == {sha}, "pointer text was stored as an object"


def test_pointer_files_from_a_skip_smudge_clone_renormalize_to_themselves(repos: Repos, sealed) -> None:
    for i in range(3):
        write_random(repos.work / f"{i}.bin", 4000, i)
    commit_all(repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"
    clone(repos.remote, dest, env={"GIT_MLX_SKIP_SMUDGE": "1"})
    for i in range(3):
        (dest / f"{i}.bin").touch()  # new mtime: git must re-clean them

    git("add", "--renormalize", ".", cwd=dest)

    assert_clean_worktree(dest)
    assert git("diff", "--cached", "--name-only", cwd=dest).stdout == ""


def test_git_lfs_pointer_is_restored_by_clone(repos: Repos, sealed) -> None:
    sha = write_random(repos.work / "real.bin", 7000, "real")
    commit_all(repos.work)
    lfs = pointer_text(sha, 7000, LFS_VERSION)
    blob = git("hash-object", "-w", "--no-filters", "--stdin", cwd=repos.work, input=lfs).stdout.strip()
    git("update-index", "--add", "--cacheinfo", f"100644,{blob},from-lfs.bin", cwd=repos.work)
    git("commit", "-q", "-m", "an lfs pointer", cwd=repos.work)
    git("push", "-q", "origin", "main", cwd=repos.work)
    dest = sealed.root / "clone"

    assert_no_traceback(clone(repos.remote, dest))
    assert_content(dest, "from-lfs.bin", sha)
    assert blob_at(dest, "HEAD:from-lfs.bin") == lfs


def test_git_lfs_pointer_file_stays_clean_when_git_rereads_it(repos: Repos, sealed) -> None:
    sha = write_random(repos.work / "real.bin", 7000, "real")
    commit_all(repos.work)
    lfs = pointer_text(sha, 7000, LFS_VERSION)
    blob = git("hash-object", "-w", "--no-filters", "--stdin", cwd=repos.work, input=lfs).stdout.strip()
    git("update-index", "--add", "--cacheinfo", f"100644,{blob},from-lfs.bin", cwd=repos.work)
    git("commit", "-q", "-m", "an lfs pointer", cwd=repos.work)
    git("checkout", "--", "from-lfs.bin", cwd=repos.work)
    (repos.work / "from-lfs.bin").touch()

    assert_clean_worktree(repos.work)


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["track", "--no-such-option"],
        ["untrack"],
        ["remote", "set"],
        ["push", "no-such-remote"],
        ["ls-files", "extra-argument"],
    ],
    ids=lambda a: " ".join(a),
)
def test_usage_errors_exit_2(repos: Repos, args: list[str]) -> None:
    result = mlx(*args, cwd=repos.work, check=False)
    assert_no_traceback(result)
    assert result.returncode == 2, str(result)
    assert result.stderr.strip(), "a usage error must say what is wrong"


def test_install_local_outside_a_repository_is_a_usage_error(sealed) -> None:
    result = mlx("install", "--local", cwd=sealed.root, check=False)
    assert result.returncode == 2, str(result)


@pytest.mark.parametrize("args", [["pointer", "missing.bin"], ["status"], ["ls-files"]], ids=" ".join)
def test_expected_failures_exit_1_with_an_error_line(sealed, args: list[str]) -> None:
    (sealed.root / "outside").mkdir()
    result = mlx(*args, cwd=sealed.root / "outside", check=False)
    assert_no_traceback(result)
    assert result.returncode == 1, str(result)
    assert re.match(r"error: \S", result.stderr), result.stderr
    if args[0] == "pointer":
        assert "'missing.bin'" in result.stderr


def test_help_and_version_exit_0(sealed) -> None:
    # `git mlx --help` is git's own: it opens the git-mlx man page.
    assert "Usage" in run(["git-mlx", "--help"], sealed.root).stdout
    assert "Usage" in mlx("-h", cwd=sealed.root).stdout
    assert re.search(r"\d+\.\d+", mlx("--version", cwd=sealed.root).stdout)


@pytest.mark.parametrize("quotepath", ["true", "false"])
def test_ls_files_quotes_paths_as_git_does(sealed, quotepath: str) -> None:
    repos = make_repo_with_bare_remote(sealed.root)
    names = ["new\nline.bin", "tab\there.bin", 'quote".bin', "back\\slash.bin", "été.bin", "plain.bin"]
    for name in names:
        write_random(repos.work / name, 100, name)
    commit_all(repos.work, "odd names")
    git("config", "core.quotepath", quotepath, cwd=repos.work)
    expected = git("ls-files", "--", "*.bin", cwd=repos.work).stdout.splitlines()  # git is the oracle
    listed = mlx("ls-files", cwd=repos.work).stdout.splitlines()
    assert sorted(line.split(" ", 2)[2] for line in listed) == sorted(expected)
    raw = run(["git", "mlx", "ls-files", "-z"], repos.work).stdout.split("\0")[:-1]
    assert sorted(entry.split(" ", 2)[2] for entry in raw) == sorted(names)
