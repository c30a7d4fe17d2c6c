"""gitmlx.format.attrlines: switching or removing filter drivers in .gitattributes text,
everything else byte for byte (what `migrate export` writes into each commit)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gitmlx.format.attrlines import switch_drivers

MLX = b"filter=mlx diff=mlx merge=mlx -text"
LFS = b"filter=lfs diff=lfs merge=lfs -text"

CASES = [
    # (text, drivers, to, expected, lines changed)
    (b"*.bin " + MLX + b"\n", ["mlx"], "lfs", b"*.bin filter=lfs diff=lfs merge=lfs -text\n", 1),
    (b"*.bin " + MLX + b"\r\n", ["mlx"], "lfs", b"*.bin filter=lfs diff=lfs merge=lfs -text\r\n", 1),
    (b"*.bin " + MLX, ["mlx"], "lfs", b"*.bin filter=lfs diff=lfs merge=lfs -text", 1),  # no final LF
    (b'"a b.bin"\t' + MLX + b" lockable\n", ["mlx"], "lfs", b'"a b.bin"\t' + LFS + b" lockable\n", 1),
    (b'"filter=mlx" -text\n', ["mlx"], "lfs", b'"filter=mlx" -text\n', 0),  # a quoted pattern is not a field
    (b"filter=mlx -text\n", ["mlx"], None, b"filter=mlx -text\n", 0),  # the pattern is never an attribute
    (b"# *.bin " + MLX + b"\n\n  \n", ["mlx"], "lfs", b"# *.bin " + MLX + b"\n\n  \n", 0),
    (b"*.txt text eol=lf\n", ["mlx"], "lfs", b"*.txt text eol=lf\n", 0),
    (b"*.bin filter=mlxx diff=other\n", ["mlx"], "lfs", b"*.bin filter=mlxx diff=other\n", 0),
    (b"*.bin " + MLX + b"\n", ["mlx", "lfs"], None, b"*.bin -text\n", 1),
    (b"*.pt filter=lfs diff=lfs merge=lfs\n*.txt text\n", ["mlx", "lfs"], None, b"*.txt text\n", 1),  # line goes
]


@pytest.mark.parametrize(("text", "drivers", "to", "expected", "changed"), CASES)
def test_switch_drivers_golden_cases(text: bytes, drivers: list[str], to: str | None, expected: bytes, changed: int):
    assert switch_drivers(text, drivers, to) == (expected, changed)


pattern = st.sampled_from([b"*.bin", b'"a b.bin"', b"filter=mlx", b"# c", b"", b"x/**"])
field = st.sampled_from([b"filter=mlx", b"diff=mlx", b"merge=mlx", b"-text", b"filter=mlxx", b"text", b"eol=lf"])
blanks = st.sampled_from([b" ", b"\t", b"  "])
line = st.tuples(pattern, st.lists(st.tuples(blanks, field), max_size=4), st.sampled_from([b"", b" ", b"\t"]))
ending = st.sampled_from([b"\n", b"\r\n"])


@given(st.lists(st.tuples(line, ending), max_size=8))
def test_switching_there_and_back_gives_the_same_bytes(lines) -> None:
    text = b"".join(p + b"".join(b + f for b, f in fields) + trail + end for (p, fields, trail), end in lines)
    there, changed = switch_drivers(text, ["mlx"], "lfs")
    back, changed_back = switch_drivers(there, ["lfs"], "mlx")
    assert back == text and changed == changed_back
    for ((p, _fields, _trail), _end), got in zip(lines, there.splitlines(), strict=True):
        if p and not p.startswith(b"#"):  # without a pattern, the first field is the pattern
            assert got.startswith(p)
            assert not {b"filter=mlx", b"diff=mlx", b"merge=mlx"} & set(got[len(p) :].split())
