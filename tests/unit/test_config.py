"""gitmlx.config: precedence, keys a committed .mlxconfig may not set, parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.config import SETTINGS, Config, Value, parse_bool, split_patterns
from gitmlx.errors import ConfigError

URL = "mlx.url"


def config(env=None, git=(), mlxconfig=()) -> Config:
    return Config(env or {}, list(git), list(mlxconfig))


def test_default_when_nothing_is_set() -> None:
    assert config().get("mlx.concurrency") == Value("mlx.concurrency", "8", "default")
    assert config().get(URL) is None
    assert config().value(URL) is None


def test_mlxconfig_beats_default() -> None:
    c = config(mlxconfig=[("mlx.concurrency", "4")])
    assert c.get("mlx.concurrency") == Value("mlx.concurrency", "4", ".mlxconfig")


def test_git_config_beats_mlxconfig() -> None:
    c = config(git=[(URL, "s3://git/x", "local")], mlxconfig=[(URL, "s3://committed")])
    assert c.get(URL) == Value(URL, "s3://git/x", "git config --local")


def test_env_beats_git_config() -> None:
    c = config(env={"GIT_MLX_URL": "/env"}, git=[(URL, "/git", "local")], mlxconfig=[(URL, "/mlx")])
    assert c.get(URL) == Value(URL, "/env", "env GIT_MLX_URL")


def test_local_git_config_beats_global_in_git_order() -> None:
    # `git config --list --show-scope` lists system, global, local, worktree: the last one wins.
    entries = [(URL, "/system", "system"), (URL, "/global", "global"), (URL, "/local", "local")]
    assert config(git=entries).get(URL) == Value(URL, "/local", "git config --local")
    assert config(git=entries[:2]).get(URL) == Value(URL, "/global", "git config --global")


def test_git_config_worktree_and_command_line_scopes() -> None:
    c = config(git=[(URL, "/local", "local"), (URL, "/wt", "worktree")])
    assert c.get(URL) == Value(URL, "/wt", "git config --worktree")
    c = config(git=[(URL, "/cmd", "command")])
    assert c.get(URL) == Value(URL, "/cmd", "git config (command line)")
    c = config(git=[(URL, "/odd", "blob")])
    assert c.get(URL) == Value(URL, "/odd", "git config (blob)")


def test_empty_env_value_is_ignored() -> None:
    c = config(env={"GIT_MLX_URL": ""}, git=[(URL, "/git", "global")])
    assert c.value(URL) == "/git"


def test_env_names_are_tried_in_order() -> None:
    key = "mlx.s3.endpoint-url"
    both = {"AWS_ENDPOINT_URL_S3": "http://s3-only", "AWS_ENDPOINT_URL": "http://all"}
    assert config(env=both).get(key) == Value(key, "http://s3-only", "env AWS_ENDPOINT_URL_S3")
    assert config(env={"AWS_ENDPOINT_URL": "http://all"}).value(key) == "http://all"


@pytest.mark.parametrize("key", ["mlx.cache", "mlx.skipsmudge", "mlx.thin"])
def test_keys_not_honoured_from_mlxconfig(key: str) -> None:
    c = config(mlxconfig=[(key, "/tmp/evil" if key == "mlx.cache" else "true")])
    found = c.get(key)
    assert found is None or found.source == "default"
    assert not c.flag("mlx.skipsmudge") and not c.flag("mlx.thin")


@pytest.mark.parametrize(
    ("key", "value"), [("mlx.cache", "/shared/cache"), ("mlx.skipsmudge", "true"), ("mlx.thin", "true")]
)
def test_keys_not_honoured_from_mlxconfig_still_work_from_git_and_env(key: str, value: str) -> None:
    assert config(git=[(key, value, "global")]).value(key) == value
    env_name = {"mlx.cache": "GIT_MLX_CACHE", "mlx.skipsmudge": "GIT_MLX_SKIP_SMUDGE", "mlx.thin": "GIT_MLX_THIN"}[key]
    assert config(env={env_name: value}).value(key) == value


def test_remote_specific_url_is_read_from_any_layer() -> None:
    key = "remote.origin.mlxurl"
    assert config(mlxconfig=[(key, "s3://b")]).get(key) == Value(key, "s3://b", ".mlxconfig")
    assert config(git=[(key, "s3://g", "local")], mlxconfig=[(key, "s3://b")]).value(key) == "s3://g"


def test_git_returns_plain_git_values() -> None:
    c = config(git=[("remote.origin.url", "/a", "global"), ("remote.origin.url", "/b", "local")])
    assert c.git("remote.origin.url") == "/b"
    assert c.git("remote.other.url") is None
    assert c.git_keys() == ["remote.origin.url"]


def test_flag() -> None:
    assert config().flag("mlx.skipsmudge") is False
    assert config(env={"GIT_MLX_SKIP_SMUDGE": "1"}).flag("mlx.skipsmudge") is True
    assert config(git=[("mlx.skipsmudge", "yes", "local")]).flag("mlx.skipsmudge") is True


def test_integer_valid() -> None:
    assert config().integer("mlx.concurrency") == 8
    assert config(env={"GIT_MLX_CONCURRENCY": "32"}).integer("mlx.concurrency") == 32


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "1.5", "eight", "0x10"])
def test_integer_invalid_names_key_value_and_source(raw: str) -> None:
    c = config(git=[("mlx.concurrency", raw, "local")])
    with pytest.raises(ConfigError) as info:
        c.integer("mlx.concurrency")
    message = str(info.value)
    assert "mlx.concurrency" in message and repr(raw) in message and "git config --local" in message
    assert info.value.hint and "at least 1" in info.value.hint


def test_integer_unset_without_default_is_an_error() -> None:
    with pytest.raises(ConfigError, match="nowhere"):
        config().integer("mlx.url")


def test_integer_minimum() -> None:
    c = config(git=[("mlx.concurrency", "0", "local")])
    assert c.integer("mlx.concurrency", minimum=0) == 0


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "True", "yes", "on", " true\n"])
def test_parse_bool_true(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["", "0", "false", "no", "off", "maybe", "tru"])
def test_parse_bool_false(text: str) -> None:
    assert parse_bool(text) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, []),
        ("", []),
        ("   ", []),
        ("*.bin", ["*.bin"]),
        ("a,b c", ["a", "b", "c"]),
        (" a , ,b\tc,, ", ["a", "b", "c"]),
        ("models/**/*.safetensors,data/", ["models/**/*.safetensors", "data/"]),
    ],
)
def test_split_patterns(text: str | None, expected: list[str]) -> None:
    assert split_patterns(text) == expected


def test_every_setting_key_is_unique_and_documented() -> None:
    keys = [s.key for s in SETTINGS]
    assert len(keys) == len(set(keys))
    assert all(s.doc for s in SETTINGS)


# --- properties ---------------------------------------------------------------------

keys = st.one_of(st.sampled_from([s.key for s in SETTINGS]), st.text(max_size=30))
env_names = st.one_of(st.sampled_from([name for s in SETTINGS for name in s.env]), st.text(max_size=20))
scopes = st.one_of(st.sampled_from(["system", "global", "local", "worktree", "command"]), st.text(max_size=10))


@given(
    env=st.dictionaries(env_names, st.text(max_size=30), max_size=5),
    git=st.lists(st.tuples(keys, st.text(max_size=30), scopes), max_size=6),
    mlxconfig=st.lists(st.tuples(keys, st.text(max_size=30)), max_size=6),
    key=keys,
)
def test_config_get_never_raises(env: dict, git: list, mlxconfig: list, key: str) -> None:
    c = Config(env, git, mlxconfig)
    found = c.get(key)
    assert found is None or (found.key == key and isinstance(found.value, str))
    c.flag(key)
    try:
        assert c.integer(key) >= 1
    except ConfigError:
        pass
