"""gitmlx.format.patterns: fetch include/exclude matching, read as git reads a .gitignore
line. Every case here is also checked against git itself (tests/e2e/test_patterns_oracle.py),
which also compares thousands of generated patterns and paths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.format.patterns import matches, selected

CASES = [
    # basename patterns (no '/') match at any depth
    ("*.bin", "a.bin", True),
    ("*.bin", "x/y/z/a.bin", True),
    ("*.bin", "a.bin.txt", False),
    ("*.bin", "abin", False),
    ("model.safetensors", "model.safetensors", True),
    ("model.safetensors", "deep/dir/model.safetensors", True),
    ("model.safetensors", "deep/dir/my-model.safetensors", False),
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("*", "anything/at/all", True),
    ("[!a]x", "bx", True),
    ("[!a]x", "ax", False),
    ("[ab]x", "ax", True),
    ("[ab]x", "cx", False),
    ("[^a]x", "bx", True),
    ("[^a]x", "ax", False),
    ("[a-c]x", "bx", True),
    ("[a-c]x", "dx", False),
    ("[a!b]x", "!x", True),  # '!' negates only in first place
    ("[a!b]x", "cx", False),
    ("[\\d]x", "5x", False),  # no regex escapes inside a class
    ("[[]x", "[x", True),
    ("[a&&b]x", "&x", True),
    ("data.v1+2(x).bin", "data.v1+2(x).bin", True),  # regex metacharacters are literal
    ("data.v1+2(x).bin", "datax.v1+2(x).bin", False),
    # anchored patterns (containing '/') match from the top
    ("data/*.bin", "data/a.bin", True),
    ("data/*.bin", "x/data/a.bin", False),
    ("data/*.bin", "data/sub/a.bin", False),
    ("/top.bin", "top.bin", True),
    ("/top.bin", "x/top.bin", False),
    ("models/v1/w.bin", "models/v1/w.bin", True),
    ("models/v1/w.bin", "a/models/v1/w.bin", False),
    # folder patterns cover everything beneath
    ("models", "models/a.bin", True),
    ("models", "models/x/y/a.bin", True),
    ("models", "nested/models/a.bin", True),
    ("models", "models2/a.bin", False),
    ("models", "my-models/a.bin", False),
    ("models/", "models/a.bin", True),
    ("models/", "nested/models/a.bin", True),
    ("data/raw", "data/raw/x.bin", True),
    ("data/raw", "data/raw/deep/x.bin", True),
    ("data/raw", "x/data/raw/y.bin", False),
    ("data/raw", "data/rawer/y.bin", False),
    ("data/raw/", "data/raw/x.bin", True),
    ("data/*", "data/sub/deep.bin", True),  # matches the folder `data/sub`, so covers it
    # ** spans folders
    ("data/**/*.bin", "data/a.bin", True),
    ("data/**/*.bin", "data/x/y/a.bin", True),
    ("data/**/*.bin", "other/a.bin", False),
    ("data/**/*.bin", "data/x/a.txt", False),
    ("**/w.bin", "w.bin", True),
    ("**/w.bin", "a/b/w.bin", True),
    ("data/**", "data/x/y", True),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    # git's wildmatch: classes, escapes, brackets
    ("models/my[[:space:]]model.bin", "models/my model.bin", True),
    ("models/[o]ther.bin", "models/other.bin", True),
    ("models/my model.bin", "models/my model.bin", True),
    ("[[:digit:]]x", "5x", True),
    ("[[:digit:]]x", "ax", False),
    ("[[:space:]]", "\t", True),
    ("[[:bogus:]]x", "bx", False),  # an unknown class: the pattern matches nothing
    ("[[:alpha:]-z]", "-", True),  # no range after a class
    ("[]a]", "]", True),  # ']' first is a member
    ("[!]a]", "]", False),
    ("[a-]", "-", True),
    ("[\\]]", "]", True),
    ("\\*.bin", "*.bin", True),  # escaped wildcard
    ("\\*.bin", "x.bin", False),
    ("a[", "a[", False),  # an unterminated bracket matches nothing, as in git
    ("a**b", "a/x/b", False),  # '**' not between slashes is one '*'
    ("a**/b", "a/x/b", True),  # ... except right after the literal start, as git reads it
    ("x/**b", "x/a/b", False),
    ("**", "a/b", True),
    ("data/**", "data", False),
    ("a/**/", "a/b/c", True),
    ("a/**/", "a/b", False),  # folders only: 'b' is a file
    ("#x", "#x", True),
    ("!x", "!x", True),
    ("dir/", "dir", False),
]


@pytest.mark.parametrize(("pattern", "path", "expected"), CASES)
def test_matches(pattern: str, path: str, expected: bool) -> None:
    assert matches(path, pattern) is expected


def test_selected_without_filters_takes_everything() -> None:
    assert selected("any/path.bin", [], [])


def test_selected_include_only() -> None:
    assert selected("models/a.bin", ["models"], [])
    assert not selected("data/a.bin", ["models"], [])


def test_selected_exclude_only() -> None:
    assert not selected("data/raw/a.bin", [], ["data/raw"])
    assert selected("data/clean/a.bin", [], ["data/raw"])


def test_selected_exclude_wins_over_include() -> None:
    include, exclude = ["*.safetensors", "data"], ["*.tmp.safetensors", "data/raw"]
    assert selected("w.safetensors", include, exclude)
    assert selected("data/clean/x.parquet", include, exclude)
    assert not selected("w.tmp.safetensors", include, exclude)
    assert not selected("data/raw/x.parquet", include, exclude)
    assert not selected("notes.txt", include, exclude)


def test_selected_any_include_suffices() -> None:
    assert selected("b/x", ["a", "b"], [])


@pytest.mark.parametrize("pattern", ["[]", "[!]", "[z-a]", "[a\\]", "a[", "[", "]"])
def test_malformed_bracket_patterns_do_not_crash(pattern: str) -> None:
    # User input (-I/-X, mlx.fetchinclude): an unusable [...] class is matched as literal text.
    assert matches(pattern, pattern) in (True, False)
    assert matches("unrelated.bin", pattern) is False


pattern_text = st.one_of(st.text(max_size=20), st.text(alphabet="[]!^-\\az/*?.", max_size=12))


@given(pattern=pattern_text, path=st.text(alphabet="[]!^-\\az/*?.", max_size=20))
def test_matches_never_raises(pattern: str, path: str) -> None:
    assert matches(path, pattern) in (True, False)


def test_a_pattern_past_the_state_memo_still_matches_right(monkeypatch: pytest.MonkeyPatch) -> None:
    from gitmlx.format import patterns, wildmatch

    monkeypatch.setattr(wildmatch, "MEMO_LIMIT", 3)
    patterns._compile.cache_clear()
    try:
        for pattern, path, expected in CASES:
            assert matches(path, pattern) == expected, (pattern, path)
    finally:
        patterns._compile.cache_clear()


def test_a_hostile_pattern_is_linear_in_the_path() -> None:
    """`**a**a...**b` against a long run of 'a' backtracks for hours in a regex engine.
    Run in a child process so that a regression fails this test instead of hanging it."""
    import subprocess
    import sys

    code = (
        "from gitmlx.format.patterns import matches, selected\n"
        "p = '**a' * 10 + '**b'\n"
        "assert not matches('a' * 70, p)\n"
        "assert not matches('a/' * 2000 + 'a' * 4000, p)\n"
        "assert not selected('x' * 70, ['[a]*[a]*[a]*[a]*[a]*[a]*[a]*b'], [])\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
