"""Numbers read from configuration, which a committed `.mlxconfig` makes untrusted input:
every count, size and number of days is bounded before any arithmetic sees it."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.config import MAX_DAYS, MAX_NUMBER, Config, parse_count, parse_days, parse_size
from gitmlx.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        (" 42 ", 42),
        ("9223372036854775807", MAX_NUMBER),
        ("9223372036854775808", None),
        ("9" * 5000, None),  # int() raises past 4,300 digits
        ("1_000", None),
        ("٣", None),  # int() takes other scripts' digits
        ("-1", None),
        ("", None),
        ("0x10", None),
    ],
)
def test_counts_are_plain_bounded_decimals(text: str, expected: int | None) -> None:
    assert parse_count(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4GiB", 4 << 30),
        ("512m", 512 << 20),
        ("1048576", 1 << 20),
        ("8388607t", 8388607 << 40),
        ("8388608t", None),  # 2^63: one past the largest file size
        ("9" * 5000 + "g", None),
        ("1 g", None),
        ("g", None),
        ("nan", None),
    ],
)
def test_sizes_are_bounded(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7", 7.0), ("0.5", 0.5), ("0", 0.0), ("36500", MAX_DAYS), ("36501", None), ("nan", None), ("inf", None)]
    + [("1e400", None), ("-1", None), (".", None), ("1.2.3", None), ("9" * 5000, None)],
)
def test_days_are_finite_and_bounded(text: str, expected: float | None) -> None:
    assert parse_days(text) == expected


@given(st.text(max_size=6000))
def test_no_text_makes_a_number_parser_raise_or_overflow(text: str) -> None:
    count, size, days = parse_count(text), parse_size(text), parse_days(text)
    assert count is None or 0 <= count <= MAX_NUMBER
    assert size is None or 0 <= size <= MAX_NUMBER
    assert days is None or (math.isfinite(days) and 0 <= days <= MAX_DAYS)


def test_a_committed_setting_of_thousands_of_digits_is_a_config_error() -> None:
    config = Config({}, [], [("mlx.smudgelimit", "9" * 5000), ("mlx.concurrency", "9" * 5000)])
    with pytest.raises(ConfigError, match="invalid mlx.smudgelimit"):
        config.size("mlx.smudgelimit")
    with pytest.raises(ConfigError, match="invalid mlx.concurrency"):
        config.integer("mlx.concurrency")
