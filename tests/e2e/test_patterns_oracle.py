"""The path pattern matcher (gitmlx.format.patterns) against git itself: generated
patterns and paths, each batch answered by one `git check-ignore` (tests/support/git_oracle).

The default run tries a few thousand (pattern, path) pairs; `-m slow` tries 60,000.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gitmlx.format.patterns import matches
from tests.support.git_oracle import check_ignore
from tests.unit.test_patterns import CASES

#: Pattern pieces, each with the texts a path may put where it stands (so that generated
#: paths often match and the interesting edges are crossed both ways).
PIECES: dict[str, tuple[str, ...]] = {
    "a": ("a",),
    "b": ("b", "a"),
    "/": ("/",),
    " ": (" ",),
    "\t": ("\t", " "),
    ".": (".",),
    "-": ("-",),
    "!": ("!",),
    "#": ("#",),
    ":": (":",),
    "^": ("^",),
    "]": ("]",),
    "[": ("[", "a"),
    "\\": ("", "\\"),
    "*": ("", "a", "ab", "a/b"),
    "**": ("", "a/b", "ab", "a"),
    "***": ("", "a/b/"),
    "**/": ("", "a/", "a/b/"),
    "/**": ("/a", "/a/b", ""),
    "/**/": ("/", "/a/", "/a/b/"),
    "?": ("a", " ", "/"),
    "\\*": ("*", "a"),
    "\\?": ("?",),
    "\\[": ("[",),
    "\\ ": (" ",),
    "\\/": ("/",),
    "[ab]": ("a", "c"),
    "[!a]": ("b", "a", "/"),
    "[^b]": ("a", "b"),
    "[]a]": ("]", "a", "b"),
    "[\\]]": ("]", "\\"),
    "[a-]": ("-", "a", "b"),
    "[+-0]": ("/", ".", "-"),
    "[a-c]": ("b", "d"),
    "[c-a]": ("b",),
    "[[:space:]]": (" ", "\t", "a"),
    "[[:alpha:]]": ("a", "1"),
    "[[:digit:][:punct:]]": ("1", "!", "a"),
    "[[:upper:]]": ("A", "a"),
    "[![:blank:]]": ("a", " "),
    "[[:bogus:]]": ("a",),
    "[[:]": ("[", ":"),
    "[[:a]": (":", "a", "["),
    "[a": ("[a", "a"),
}
PATH_CHARS = "ab .-[]*?\\!:#^\t1A"


def _path(text: str) -> str | None:
    """A file path in a tree: no empty, '.' or '..' component, no leading or trailing '/'."""
    parts = [p for p in text.split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or None


@st.composite
def pairs(draw: st.DrawFn) -> list[tuple[str, str]]:
    out = []
    for _ in range(draw(st.integers(1, 500))):
        pieces = draw(st.lists(st.sampled_from(sorted(PIECES)), min_size=1, max_size=7))
        pattern = "".join(pieces)
        if pattern.endswith(" ") or not pattern.strip("/"):
            continue
        near = _path("".join(draw(st.sampled_from(PIECES[p])) for p in pieces))
        if draw(st.booleans()):  # a folder above or below what the pattern names
            near = _path(draw(st.sampled_from(("x/", "a/", ""))) + (near or "") + draw(st.sampled_from(("/c", ""))))
        other = _path(draw(st.text(alphabet=PATH_CHARS + "/", min_size=1, max_size=14)))
        out.extend((pattern, path) for path in (near, other) if path)
    return out


def _disagreements(root: Path, batch: list[tuple[str, str]]) -> list[tuple[str, str, bool]]:
    answers = check_ignore(root, batch)
    pairs_answers = zip(batch, answers, strict=True)
    return [(pattern, path, git) for (pattern, path), git in pairs_answers if matches(path, pattern) != git]


_tried = itertools.count()
#: Pairs compared so far, printed at the end of the module (`-s` shows it).
PAIRS = [0]
#: Each batch gets a folder of its own, so the shared tmp_path is fine.
_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module", autouse=True)
def _count() -> Iterator[None]:
    yield
    print(f"\npattern oracle: {PAIRS[0]} (pattern, path) pairs compared with git")


def _check(root: Path, batch: list[tuple[str, str]]) -> None:
    folder = root / f"oracle-{next(_tried)}"
    PAIRS[0] += len(batch)
    wrong = _disagreements(folder, batch)
    assert not wrong, f"{len(wrong)} of {len(batch)} pairs disagree with git (pattern, path, git says): {wrong[:10]}"


def test_the_examples_agree_with_git(tmp_path: Path) -> None:
    extra = [
        ("models/my[[:space:]]model.bin", "models/my model.bin"),
        ("models/[o]ther.bin", "models/other.bin"),
        ("a**/b", "a/x/b"),
        ("a/**b", "a/x/b"),
        ("[[:space:]", " "),
        ("\\#x", "#x"),
    ]
    assert _disagreements(tmp_path, [(p, q) for p, q, _ in CASES] + extra) == []


@settings(max_examples=8, deadline=None, suppress_health_check=_CHECKS)
@given(batch=pairs())
def test_generated_patterns_agree_with_git(tmp_path: Path, batch: list[tuple[str, str]]) -> None:
    _check(tmp_path, batch)


@pytest.mark.slow
@settings(max_examples=200, deadline=None, suppress_health_check=_CHECKS)
@given(batch=pairs())
def test_many_generated_patterns_agree_with_git(tmp_path: Path, batch: list[tuple[str, str]]) -> None:
    _check(tmp_path, batch)
