"""Configuration keys and how a value is resolved, with where it came from.

Owns: the table of settings and the precedence rule (README.md, "Configuration"):
environment > git config (worktree, local, then global, system) > `.mlxconfig` > default.
Must not: read files or run git; callers hand it the entries they read.

Not every key is honoured from a repository's committed `.mlxconfig`: a cloned repo must
not choose where gitmlx writes on the user's disk (`mlx.cache`) or switch smudging off.
See docs/threat-model.md.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping


class Setting(
    namedtuple("_SettingFields", ("key", "env", "from_mlxconfig", "default", "doc"), defaults=((), True, None, ""))
):
    """One configuration key: `key` (str), the environment variables that override it
    (`env`, tuple of str, first set wins), whether a committed `.mlxconfig` may set it
    (`from_mlxconfig`), its `default` (str or None) and a one-line `doc`.

    Named tuples, not dataclasses, here and in the other modules the filter imports: see
    docs/design.md, "Start-up"."""

    __slots__ = ()


SETTINGS: tuple[Setting, ...] = (
    Setting("mlx.url", ("GIT_MLX_URL",), doc="artifact remote: s3://BUCKET[/PREFIX], file:///PATH or a path"),
    Setting("mlx.remote", ("GIT_MLX_REMOTE",), doc="git remote whose artifact remote is used by default"),
    Setting("mlx.s3.endpoint-url", ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"), doc="S3-compatible endpoint"),
    Setting("mlx.s3.region", ("GIT_MLX_S3_REGION",), doc="S3 region"),
    Setting("mlx.s3.addressing-style", (), doc="S3 addressing: auto, path or virtual"),
    Setting(
        "mlx.s3.part-size",
        ("GIT_MLX_S3_PART_SIZE",),
        from_mlxconfig=False,
        default="64MiB",
        doc="S3 multipart part size, and the size from which uploads go in parts (5MiB to 5GiB)",
    ),
    Setting("mlx.concurrency", ("GIT_MLX_CONCURRENCY",), default="8", doc="parallel transfers"),
    Setting("mlx.cache", ("GIT_MLX_CACHE",), from_mlxconfig=False, doc="shared local store directory"),
    Setting("mlx.fetchinclude", ("GIT_MLX_FETCH_INCLUDE",), doc="only fetch paths matching these patterns"),
    Setting("mlx.fetchexclude", ("GIT_MLX_FETCH_EXCLUDE",), doc="never fetch paths matching these patterns"),
    Setting(
        "mlx.smudgelimit",
        ("GIT_MLX_SMUDGE_LIMIT",),
        default="4GiB",
        doc="objects above this size never pass through git's memory: gitmlx writes them itself (0: no limit)",
    ),
    Setting(
        "mlx.directplace",
        ("GIT_MLX_DIRECT_PLACE",),
        default="1",
        doc="during checkouts, objects this big or bigger are put in place by gitmlx, not written by git (0: never)",
    ),
    Setting(
        "mlx.thin",
        ("GIT_MLX_THIN",),
        from_mlxconfig=False,
        default="false",
        doc="thin checkouts: the work-tree file is the only local copy of an artifact the remote holds",
    ),
    Setting("mlx.gcgrace", (), from_mlxconfig=False, default="7", doc="days before gc --remote deletes"),
    Setting("mlx.pruneoffsetdays", (), from_mlxconfig=False, default="3", doc="prune keeps commits this recent"),
    Setting(
        "mlx.skipsmudge",
        ("GIT_MLX_SKIP_SMUDGE",),
        from_mlxconfig=False,
        default="false",
        doc="leave pointers on checkout",
    ),
)
_BY_KEY = {s.key: s for s in SETTINGS}

_SCOPE_LABEL = {
    "command": "git config (command line)",
    "worktree": "git config --worktree",
    "local": "git config --local",
    "global": "git config --global",
    "system": "git config --system",
}


class Value(namedtuple("_ValueFields", ("key", "value", "source"))):
    """A resolved setting: its `key`, `value` (str) and `source`, where it came from (e.g.
    "env GIT_MLX_URL", "git config --local", ".mlxconfig", "default")."""

    __slots__ = ()


class Config:
    """Resolved settings. `git_entries` are (key, value, scope) in git's order, last wins.

    `mlxconfig_entries` may be a function returning them: it is then called only when a
    lookup falls through to `.mlxconfig`, so a filter that only cleans (it needs only
    `mlx.cache`, which `.mlxconfig` may not set) never reads the committed file."""

    def __init__(
        self,
        env: Mapping[str, str],
        git_entries: Iterable[tuple[str, str, str]],
        mlxconfig_entries: Iterable[tuple[str, str]] | Callable[[], Iterable[tuple[str, str]]] = (),
    ) -> None:
        self._env = env
        self._git: dict[str, tuple[str, str]] = {}
        self._git_all: dict[str, list[str]] = {}
        for key, value, scope in git_entries:
            self._git[key] = (value, scope)
            self._git_all.setdefault(key, []).append(value)
        self._read_mlxconfig = mlxconfig_entries if callable(mlxconfig_entries) else None
        self._mlxconfig_entries: dict[str, str] | None = (
            None if callable(mlxconfig_entries) else dict(mlxconfig_entries)
        )

    @property
    def _mlxconfig(self) -> dict[str, str]:
        if self._mlxconfig_entries is None:
            assert self._read_mlxconfig is not None
            self._mlxconfig_entries = dict(self._read_mlxconfig())
        return self._mlxconfig_entries

    def get(self, key: str) -> Value | None:
        """The winning value for `key` (a SETTINGS key or a `remote.<name>.mlxurl`)."""
        setting = _BY_KEY.get(key, Setting(key))
        for name in setting.env:
            if self._env.get(name):
                return Value(key, self._env[name], f"env {name}")
        if key in self._git:
            value, scope = self._git[key]
            return Value(key, value, _SCOPE_LABEL.get(scope, f"git config ({scope})"))
        if setting.from_mlxconfig and key in self._mlxconfig:
            return Value(key, self._mlxconfig[key], ".mlxconfig")
        if setting.default is not None:
            return Value(key, setting.default, "default")
        return None

    def value(self, key: str) -> str | None:
        found = self.get(key)
        return found.value if found else None

    def flag(self, key: str) -> bool:
        return parse_bool(self.value(key) or "false")

    def integer(self, key: str, minimum: int = 1) -> int:
        raw = self.value(key)
        number = parse_count(raw or "")
        if number is None or number < minimum:
            from gitmlx.errors import ConfigError, shown

            found = self.get(key)
            raise ConfigError(
                f"invalid {key} {shown(raw)} (from {found.source if found else 'nowhere'})",
                f"set it to a whole number of at least {minimum}",
            )
        return number

    def size(self, key: str) -> int:
        raw = self.value(key) or ""
        parsed = parse_size(raw)
        if parsed is None:
            from gitmlx.errors import ConfigError, shown

            found = self.get(key)
            raise ConfigError(
                f"invalid {key} {shown(raw)} (from {found.source if found else 'nowhere'})",
                "write a size such as 4GiB, 512MiB or 1073741824",
            )
        return parsed

    def git(self, key: str) -> str | None:
        """A plain git config value (for git's own keys such as `remote.origin.url`)."""
        found = self._git.get(key)
        return found[0] if found else None

    def git_all(self, key: str) -> list[str]:
        """Every value of a multi-valued git config key, in git's order."""
        return list(self._git_all.get(key, ()))

    def git_keys(self) -> list[str]:
        return list(self._git)


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
#: The largest number a setting may hold: the largest file size (a signed 64-bit offset).
MAX_NUMBER = 2**63 - 1


def parse_count(text: str) -> int | None:
    """A whole number in ASCII digits up to MAX_NUMBER; None for anything else.

    Bounded before conversion: a committed `.mlxconfig` is untrusted, and int() of
    thousands of digits either raises (Python's digit limit) or makes a number no
    arithmetic later should see. int() alone would also take " 1_000 " and other digits.
    """
    text = text.strip()
    if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= MAX_NUMBER else None


#: The longest span of days a setting may hold (a century).
MAX_DAYS = 36500.0
#: `mlx.gcgrace` when unset: how long `gc --remote` keeps what a note marked, and how long
#: a push trusts the remote record.
DEFAULT_GRACE_DAYS = 7.0


def parse_days(text: str) -> float | None:
    """A number of days from 0 to MAX_DAYS, in plain decimal notation; None for anything
    else. float() alone takes 'nan' (every comparison false: nothing would look recent)
    and 'inf'."""
    text = text.strip()
    whole, _, fraction = text.partition(".")
    digits = whole + fraction
    if not (0 < len(text) <= 24 and digits.isascii() and digits.isdigit() and text.count(".") <= 1):
        return None
    days = float(text)
    return days if days <= MAX_DAYS else None


def parse_size(text: str) -> int | None:
    """`4GiB`, `512m`, `1g`, `1048576` → bytes, at most MAX_NUMBER; None for anything else."""
    value = text.strip().lower().removesuffix("ib").removesuffix("b")
    number, unit = (value[:-1], value[-1]) if value[-1:] in _UNITS and value[-1:] else (value, "")
    count = parse_count(number) if number == number.strip() else None
    if count is None or count * _UNITS[unit] > MAX_NUMBER:
        return None
    return count * _UNITS[unit]


def git_settings(skip_smudge: bool = False) -> dict[str, str]:
    """The git config `git mlx install` writes: the filter and the diff driver."""
    skip = " --skip" if skip_smudge else ""
    return {
        "filter.mlx.process": f"git-mlx filter-process{skip}",
        "filter.mlx.clean": "git-mlx clean -- %f",
        "filter.mlx.smudge": f"git-mlx smudge{skip} -- %f",
        "filter.mlx.required": "true",
        "diff.mlx.textconv": "git-mlx textconv",  # cachetextconv stays off: docs/diff-driver.md
        "diff.mlx.command": "git-mlx diff-driver",  # git diff only; log -p and show use the textconv
    }


def parse_bool(text: str) -> bool:
    """git's boolean spelling: true/yes/on/1 are true, everything else false."""
    return text.strip().lower() in ("1", "true", "yes", "on")


def split_patterns(text: str | None) -> list[str]:
    """`a,b c` → ['a', 'b', 'c']: fetch include/exclude lists accept commas or spaces."""
    if not text:
        return []
    return [p for p in text.replace(",", " ").split() if p]


#: The only endpoint spelling trust decisions accept: scheme://host[:port][/]. Anything
#: else (userinfo, backslashes, paths, queries) could be read one way here and another way
#: by the HTTP client that sends the signed request (`https://evil.example\\@s3.amazonaws.com`).
#: Compiled on first use (re's cache), not at import: every filter start imports this module.
_PLAIN_ENDPOINT = r"(?i)(https?)://([a-z0-9.-]+|\[[0-9a-f:.]+\])(:[0-9]{1,5})?/?"


def endpoint_origin(url: str) -> str:
    """`scheme://host[:port]`, lowercased, or "" for anything but that plain form."""
    match = re.fullmatch(_PLAIN_ENDPOINT, url.strip())
    if match is None:
        return ""
    return f"{match.group(1).lower()}://{match.group(2).lower()}{match.group(3) or ''}"


def trusted_without_asking(url: str) -> bool:
    """Endpoints a committed `.mlxconfig` may name without the user's say-so: AWS's own
    S3 endpoints over https, and loopback (a local test server). See docs/threat-model.md."""
    import ipaddress
    from urllib.parse import urlsplit

    origin = endpoint_origin(url)  # the plain form only: no userinfo, path or query tricks
    if not origin:
        return False
    parts = urlsplit(origin)
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    return parts.scheme == "https" and (host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn"))
