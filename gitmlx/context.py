"""A repository as gitmlx sees it: its directories, resolved configuration, local store
and artifact remote.

Owns: *which* store and *which* remote a command uses (the precedence of config.py), resolved lazily so a
filter that only cleans never reads `.mlxconfig` or imports a backend.
Must not: move objects (transfer.py) or print.
"""

from __future__ import annotations

import os
import stat
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlsplit

from gitmlx.config import Config, Value, endpoint_origin, trusted_without_asking
from gitmlx.errors import ConfigError, MlxError
from gitmlx.git import plumbing
from gitmlx.store.objects import Store
from gitmlx.store.worktreelinks import WorktreeLinks

TYPE_CHECKING = False  # type checkers take it as True; the remotes load on first use
if TYPE_CHECKING:
    from gitmlx.remotes.base import Remote, RemoteOptions

MLXCONFIG = ".mlxconfig"


class RepoContext:
    def __init__(
        self,
        cwd: Path | str | None = None,
        env: dict[str, str] | None = None,
        mlxconfig_rev: str | None = None,
        at_top: bool = False,
    ) -> None:
        # `at_top`: git started this process in the work tree's top folder (a filter), so
        # `.git` there says where the repository is without asking git.
        self.paths = plumbing.repo_paths_at_top(cwd) if at_top else plumbing.repo_paths(cwd)
        self.env = dict(os.environ if env is None else env)
        #: Read `.mlxconfig` from this revision first (the Python API on a mirror reads
        #: the artifact remote a revision was pushed with).
        self.mlxconfig_rev = mlxconfig_rev

    @property
    def top(self) -> Path:
        """The work tree's top, or the git dir for a bare repository."""
        return self.paths.work_tree or self.paths.git_dir

    @cached_property
    def config(self) -> Config:
        entries = plumbing.read_config(cwd=self.top)
        return Config(
            self.env,
            ((e.key, e.value, e.scope) for e in entries),
            lambda: ((e.key, e.value) for e in self._read_mlxconfig()),
        )

    def _read_mlxconfig(self) -> list[plumbing.ConfigEntry]:
        """`.mlxconfig` from `mlxconfig_rev` if set, else the work tree, else the index,
        else HEAD (a fresh clone's checkout may smudge files before `.mlxconfig` itself
        is written).

        Only a regular file is read. A committed symlink named `.mlxconfig` must not
        make gitmlx read settings from a file anywhere on the machine, so the work-tree
        entry is lstat'ed, and an index or tree entry is read only with a regular-file
        mode (a symlink's blob is its target's name). docs/threat-model.md.
        """
        if self.mlxconfig_rev is not None:
            try:
                return self._read_committed(self.mlxconfig_rev)
            except MlxError:
                pass
        if self.paths.work_tree is not None:
            path = self.paths.work_tree / MLXCONFIG
            try:
                regular = stat.S_ISREG(os.lstat(path).st_mode)
            except OSError:
                regular = False
            if regular:
                return plumbing.read_config(cwd=self.top, file=path)
        for where in (None, "HEAD"):
            try:
                return self._read_committed(where)
            except MlxError:
                continue
        return []

    def _read_committed(self, rev: str | None) -> list[plumbing.ConfigEntry]:
        """`.mlxconfig` from the index (`rev` None) or a revision's tree; [] when it is
        absent or not a regular file; MlxError when it does not parse."""
        if rev is None:
            listed = plumbing.run_git(["ls-files", "--stage", "-z", "--", MLXCONFIG], cwd=self.top, check=False)
        else:
            listed = plumbing.run_git(["ls-tree", "-z", rev, "--", MLXCONFIG], cwd=self.top, check=False)
        for record in listed.split(b"\0"):
            fields = record.partition(b"\t")[0].split()
            # index: "MODE OID STAGE"; tree: "MODE TYPE OID". Stage 0 only: a conflicted
            # .mlxconfig has no one content.
            if len(fields) != 3 or fields[0] not in (b"100644", b"100755") or (rev is None and fields[2] != b"0"):
                continue
            oid = fields[1] if rev is None else fields[2]
            return plumbing.read_config(cwd=self.top, blob=oid.decode())
        return []

    @cached_property
    def store(self) -> Store:
        store = self._open_store()
        store.worktree_links = WorktreeLinks(self.paths.git_dir)
        return store

    def _open_store(self) -> Store:
        cache = self.config.get("mlx.cache")
        if cache is None:
            return Store(self.paths.common_dir / "mlx").check_root()
        where = Path(cache.value).expanduser()
        try:
            where = where.resolve()
        except (RuntimeError, OSError):
            pass  # a symlink loop: check_root names it
        return Store(where).check_root()

    @cached_property
    def thin(self) -> bool:
        """mlx.thin: the work-tree file is the only local copy of what the remote holds."""
        return self.config.flag("mlx.thin")

    def default_git_remote(self) -> str | None:
        """`mlx.remote`, else the current branch's remote, else origin, else the only one."""
        explicit = self.config.value("mlx.remote")
        if explicit:
            return explicit
        names = self.git_remotes()
        head = plumbing.run_git(["symbolic-ref", "-q", "--short", "HEAD"], cwd=self.top, check=False)
        branch_remote = self.config.git(f"branch.{head.decode().strip()}.remote") if head else None
        for candidate in (branch_remote, "origin"):
            if candidate and candidate in names:
                return candidate
        return names[0] if len(names) == 1 else None

    def git_remotes(self) -> list[str]:
        names = []
        for key in self.config.git_keys():
            if key.startswith("remote.") and key.endswith(".url"):
                names.append(key[len("remote.") : -len(".url")])
        return names

    def artifact_url(self, git_remote: str | None = None, git_url: str | None = None) -> Value:
        """Where artifacts for `git_remote` live, and which setting said so.

        `git_url` is the git remote's URL when it has no name (`git push /some/path`).
        """
        git_remote = git_remote or self.default_git_remote()
        keys = ([f"remote.{git_remote}.mlxurl"] if git_remote else []) + ["mlx.url"]
        found = [v for key in keys if (v := self.config.get(key)) is not None]
        if found:
            # environment beats git config beats .mlxconfig; within one level the
            # per-remote key beats mlx.url (min keeps the first of equal rank).
            return min(found, key=_source_rank)
        url = git_url or (self.config.git(f"remote.{git_remote}.url") if git_remote else None)
        if url:
            embedded = self._embedded_default(url, git_remote or url)
            if embedded is not None:
                return embedded
        where = f"git remote '{git_remote}'" if git_remote else "this repository (it has no git remote)"
        raise ConfigError(
            f"no artifact remote configured for {where}",
            "set one with 'git mlx remote set s3://BUCKET/PREFIX' (or a directory path)",
        )

    def _embedded_default(self, url: str, label: str) -> Value | None:
        """Artifacts beside a git remote that is a local path: `<its git dir>/mlx`."""
        if url.startswith("file://"):
            path = Path(unquote(urlsplit(url).path))
        elif "://" in url or (":" in url.split("/")[0] and not os.path.exists(url)):
            return None  # ssh, https, scp-like host:path: no embedded default
        else:
            path = Path(url)
            if not path.is_absolute():
                path = (self.top / path).resolve()
        return Value("mlx.url", str(_local_git_dir(path) / "mlx"), f"default (beside git remote '{label}')")

    def remote_options(self) -> RemoteOptions:
        from gitmlx.remotes.base import RemoteOptions

        endpoint = self.config.get("mlx.s3.endpoint-url")
        if endpoint is not None and endpoint.source == ".mlxconfig":
            self._check_committed_endpoint(endpoint.value)
        try:
            journals: Path | None = self.store.root / "uploads"
        except MlxError:
            journals = None  # a broken store: uploads still work, they just cannot resume
        part_size = self.config.size("mlx.s3.part-size")
        if not 5 * 1024**2 <= part_size <= 5 * 1024**3:
            raise ConfigError(
                f"invalid mlx.s3.part-size {part_size} (from {self.config.get('mlx.s3.part-size').source})",
                "S3 takes parts of 5MiB to 5GiB: set it to a size such as 64MiB",
            )
        return RemoteOptions(
            endpoint_url=endpoint.value if endpoint else None,
            region=self.config.value("mlx.s3.region"),
            addressing_style=self.config.value("mlx.s3.addressing-style"),
            concurrency=self.config.integer("mlx.concurrency"),
            upload_journals=journals,
            part_size=part_size,
        )

    def _check_committed_endpoint(self, url: str) -> None:
        """A cloned repository must not send the user's signed S3 requests to a server of
        its choosing: a committed endpoint is used only if it is AWS or loopback, or the
        user trusts it (mlx.trustedendpoint in their own git config). docs/threat-model.md."""
        origin = endpoint_origin(url)
        trusted = {endpoint_origin(u) for u in self.config.git_all("mlx.trustedendpoint")} - {""}
        if trusted_without_asking(url) or (origin and origin in trusted):
            return
        if not origin:
            raise ConfigError(
                f"this repository's .mlxconfig names an S3 endpoint gitmlx will not use: {url!r}",
                "only scheme://host[:port] is accepted (and trusted with "
                "'git config --global --add mlx.trustedendpoint scheme://host[:port]'); "
                "or set mlx.s3.endpoint-url in your own config",
            )
        raise ConfigError(
            f"this repository's .mlxconfig sends S3 requests to '{origin}', which you have not trusted; "
            "gitmlx will not sign requests with your credentials for it",
            f"if you trust it: git config --global --add mlx.trustedendpoint {origin}",
        )

    def open_remote(self, git_remote: str | None = None, git_url: str | None = None) -> Remote:
        from gitmlx.remotes.by_url import open_remote

        return open_remote(self.artifact_url(git_remote, git_url).value, self.remote_options())


def _source_rank(value: Value) -> int:
    if value.source.startswith("env"):
        return 0
    return 2 if value.source == ".mlxconfig" else 1


def _local_git_dir(path: Path) -> Path:
    """The git directory git itself uses for the local remote `path`: the first of
    `path/.git`, `path`, `path.git/.git`, `path.git` that is one (git's enter_repo order),
    so `../remote` finds `../remote.git` as `git push` does; a `.git` file (a separate git
    dir) is followed. A remote that does not exist yet gets `path/.git` or `path`."""
    for candidate in (path / ".git", path, Path(f"{path}.git") / ".git", Path(f"{path}.git")):
        found = _followed_gitfile(candidate) if candidate.is_file() else candidate
        if found is not None and (found / "HEAD").is_file() and (found / "objects").is_dir():
            return found
    return path / ".git" if (path / ".git").is_dir() else path


def _followed_gitfile(gitfile: Path) -> Path | None:
    """Where a `.git` file (`gitdir: DIR`) points, or None if it is not one."""
    try:
        text = gitfile.read_text("utf-8", "surrogateescape")[:4096]
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    target = Path(text[len("gitdir: ") :].strip())
    return target if target.is_absolute() else (gitfile.parent / target).resolve()
