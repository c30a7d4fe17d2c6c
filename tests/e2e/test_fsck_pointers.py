"""`git mlx fsck --pointers` and the pre-push warning: a file that should have been a
pointer (its attributes say filter=mlx) but was committed as content, by a clone without
gitmlx or through plumbing, is named; a healthy repository passes."""

from __future__ import annotations

from tests.support.commands import git, mlx
from tests.support.content import write_random
from tests.support.repos import Repos, add_commit, clone, remote_ref

RAW = 2 * 1024 * 1024


def _without_gitmlx(sealed) -> dict[str, str]:
    """A machine where gitmlx was never installed: no filter configuration anywhere."""
    home = sealed.root / "plain-home"
    home.mkdir()
    (home / ".gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
    return {"HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"), "XDG_CONFIG_HOME": str(home / ".config")}


def test_fsck_pointers_names_a_file_committed_by_a_machine_without_gitmlx(repos: Repos, sealed) -> None:
    add_commit(repos.work, {"models/a.bin": 100_000})
    git("push", "-q", "origin", "main", cwd=repos.work)
    healthy = mlx("fsck", "--pointers", cwd=repos.work)
    assert "every tracked file in HEAD and the index is a pointer" in healthy.stdout, healthy

    plain, other = _without_gitmlx(sealed), sealed.root / "plain"
    clone(repos.remote, other, env=plain)
    write_random(other / "models" / "raw.bin", RAW, "raw")
    git("add", "models/raw.bin", cwd=other, env=plain)
    git("commit", "-q", "-m", "raw", cwd=other, env=plain)
    git("push", "-q", "origin", "main", cwd=other, env=plain)

    there = mlx("fsck", "--pointers", cwd=other, env=plain, check=False)
    assert there.returncode == 1, there
    named = "'models/raw.bin' (2.0 MiB) should be a pointer (filter=mlx) but holds content in HEAD and index"
    assert named in there.stderr, there
    assert "git add --renormalize -- models/raw.bin" in there.stderr and "models/a.bin" not in there.stderr, there

    git("pull", "-q", "origin", "main", cwd=repos.work)
    here = mlx("fsck", "--pointers", cwd=repos.work, check=False)
    assert here.returncode == 1 and "'models/raw.bin'" in here.stderr, here

    git("add", "--renormalize", "--", "models/raw.bin", cwd=repos.work)  # the fix the hint gives
    staged = mlx("fsck", "--pointers", cwd=repos.work, check=False)
    assert staged.returncode == 1 and "holds content in HEAD\n" in staged.stderr, staged
    git("commit", "-q", "-m", "renormalize", cwd=repos.work)
    assert mlx("fsck", "--pointers", cwd=repos.work).returncode == 0


def test_pre_push_warns_about_content_committed_under_a_tracked_pattern_and_still_pushes(repos: Repos) -> None:
    add_commit(repos.work, {"models/a.bin": 100_000})
    raw = repos.work / "raw-content"
    write_random(raw, RAW, "plumbing")
    blob = git("hash-object", "-w", str(raw), cwd=repos.work).stdout.strip()
    git("update-index", "--add", "--cacheinfo", f"100644,{blob},models/raw.bin", cwd=repos.work)
    git("commit", "-q", "-m", "raw through plumbing", cwd=repos.work)

    pushed = git("push", "origin", "main", cwd=repos.work)
    assert "'models/raw.bin' (2.0 MiB) is pushed as plain git content, not a pointer" in pushed.stderr, pushed
    assert "'models/a.bin'" not in pushed.stderr
    assert remote_ref(repos.remote) == git("rev-parse", "HEAD", cwd=repos.work).stdout.strip()

    clean = git("push", "origin", "main", cwd=repos.work)  # nothing new: no warning again
    assert "plain git content" not in clean.stderr


def test_pre_push_warns_only_about_filter_mlx_content(repos: Repos) -> None:
    """The warning comes from the push's own scan of the range: content under `filter=lfs`
    (Git LFS's to check) and git's own files are not named; pointers never are."""
    attributes = repos.work / ".gitattributes"
    attributes.write_text(attributes.read_text() + "*.lfs filter=lfs diff=lfs merge=lfs -text\n")
    add_commit(repos.work, {"models/a.bin": 100_000})
    for name in ("models/raw.bin", "other/raw.lfs"):
        raw = repos.work / "raw-content"
        write_random(raw, 300_000, name)
        blob = git("hash-object", "-w", str(raw), cwd=repos.work).stdout.strip()
        git("update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", cwd=repos.work)
    git("commit", "-q", "-m", "raw through plumbing", cwd=repos.work)

    pushed = git("push", "origin", "main", cwd=repos.work)
    assert "'models/raw.bin' (293.0 KiB) is pushed as plain git content" in pushed.stderr, pushed
    assert "raw.lfs" not in pushed.stderr and ".gitattributes" not in pushed.stderr
    assert "'models/a.bin'" not in pushed.stderr
