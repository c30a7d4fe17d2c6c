"""`git-mlx diff-driver`: the external diff driver of `diff=mlx` (`diff.mlx.command`).

`git diff` runs it once per changed tracked file with both sides:
`PATH OLD-FILE OLD-HEX OLD-MODE NEW-FILE NEW-HEX NEW-MODE [NEW-PATH HEADER]` (a missing
side is /dev/null). Because it sees both sides, it can lead with what a reviewer reads
first: row counts of a dataset (gitmlx.diffs.rowdiff), and, for tensor files whose
content is not local, which tensors changed, from the headers and manifests alone
(gitmlx.api.tensor_diff). Then comes the same line diff of the two summaries that the
textconv gives `git log -p` and `git show` (which run an external driver only with
`--ext-diff`), made by `git diff --no-index` so git's diff options and colours apply.
See docs/diff-driver.md.

Its output is the diff itself, written straight to stdout like the textconv's. It never
fails for the content (git stops the whole diff when an external driver fails): what
cannot be counted is said in one line.
Must not: import click, tqdm or (unless a tensor side must be read remotely) boto3.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterable, Sequence

from gitmlx.errors import UsageError

TABLE_KINDS = ("csv", "tsv", "jsonl", "parquet")
TENSOR_KINDS = ("safetensors", "npy")
#: The git attribute that names a dataset's key columns (`mlx-key=user_id,day`).
KEY_ATTRIBUTE = "mlx-key"
_ANSI = re.compile(rb"\x1b\[[0-9;]*m")


def run(args: Sequence[str]) -> int:
    if len(args) not in (7, 9):
        raise UsageError(
            "'diff-driver' takes the 7 or 9 arguments git gives an external diff driver",
            "git runs it as diff.mlx.command; see 'git mlx install'",
        )
    path, old_file, old_hex, old_mode, new_file, new_hex, new_mode = args[:7]
    new_path, extra = (args[7], args[8]) if len(args) == 9 else (path, "")
    lead = _lead(path, old_file, new_file)
    hunks = _hunks(path, new_path, old_file, new_file)
    # git colours its hunks when it pages (or color.diff says so): the header lines then
    # get its default colour for them, bold, so the file reads as one diff.
    colored = bool(hunks) and _ANSI.match(hunks[0]) is not None
    meta = [*_header(path, new_path, old_hex, old_mode, new_hex, new_mode, extra), *lead]
    if hunks:
        meta += ["--- " + _side_name("a/", path, old_file), "+++ " + _side_name("b/", new_path, new_file)]
    out = sys.stdout.buffer
    try:
        for line in meta:
            text = f"\x1b[1m{line}\x1b[m" if colored else line
            out.write((text + "\n").encode("utf-8", "backslashreplace"))
        out.writelines(hunks)
        out.flush()
    except BrokenPipeError:
        # The reader left (`git diff | head`): not a failure of the diff, which git would
        # report as "external diff died"; git itself stops at its next write.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


def _quote(path: str) -> str:
    """A path as git prints it in diff headers: C-quoted when it needs to be."""
    if path.isprintable() and path.isascii() and '"' not in path and "\\" not in path:
        return path
    body = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else _escape(c) for c in path)
    return f'"{body}"'


def _escape(c: str) -> str:
    named = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}
    if c in named:
        return named[c]
    return "".join(f"\\{b:03o}" for b in c.encode("utf-8", "surrogateescape"))


def _header(
    path: str, new_path: str, old_hex: str, old_mode: str, new_hex: str, new_mode: str, extra: str
) -> list[str]:
    a, b = _quote("a/" + path), _quote("b/" + new_path)
    lines = [f"diff --git {a} {b}"]
    lines += [line for line in extra.splitlines() if line]
    if old_mode == ".":
        lines.append(f"new file mode {new_mode}")
    elif new_mode == ".":
        lines.append(f"deleted file mode {old_mode}")
    elif old_mode != new_mode:
        lines += [f"old mode {old_mode}", f"new mode {new_mode}"]
    index = f"index {_short(old_hex)}..{_short(new_hex)}"
    lines.append(index + (f" {new_mode}" if old_mode == new_mode else ""))
    return lines


def _short(hexid: str) -> str:
    return "0000000" if hexid == "." else hexid[:7]


def _lead(path: str, old_file: str, new_file: str) -> list[str]:
    """The counts a diff starts with: rows for a dataset, tensors for a checkpoint whose
    content is not local; nothing for other files. Never raises."""
    from gitmlx.diffs import sides

    try:
        old, new = sides.resolve(old_file, path), sides.resolve(new_file, path)
        kinds = {old.kind, new.kind} - {"missing"}
        if len(kinds) != 1:
            return []
        (kind,) = kinds
        if kind in TABLE_KINDS:
            return _row_counts(path, old, new, kind)
        if kind in TENSOR_KINDS and (_absent(old) or _absent(new)):
            from gitmlx.api import tensor_diff

            return tensor_diff.lines(path, old, new)
    except Exception as exc:  # noqa: BLE001 - git stops the whole diff if the driver fails
        return [f"(not counted: {type(exc).__name__}: {exc})"]
    return []


def _absent(side) -> bool:
    """The side exists but its content is not local (a pointer whose object is not here)."""
    return side.content is None and not side.missing


def _row_counts(path: str, old, new, kind: str) -> list[str]:
    from gitmlx.diffs import rowdiff

    if _absent(old) or _absent(new):
        return ["rows: not counted (content not local; 'git mlx fetch' gets it)"]
    tables = [None if s.missing else rowdiff.open_table(s.content, kind) for s in (old, new)]
    if any(t is None and not s.missing for t, s in zip(tables, (old, new), strict=True)):
        return ["rows: not counted (Parquet needs pyarrow and row groups up to 256 MiB)"]
    a = tables[0] or rowdiff.empty_table(tables[1])
    b = tables[1] or rowdiff.empty_table(tables[0])
    key = rowdiff.choose_key(a, b, _configured_key(path))
    return rowdiff.compare(a, b, key).lines()


def _configured_key(path: str) -> list[str] | None:
    """The `mlx-key` attribute of `path`: its columns, [] when unset (`-mlx-key`: no key),
    None when unspecified (then a leading `id` column is the key)."""
    from gitmlx.git import plumbing

    raw = plumbing.run_git(["check-attr", "-z", KEY_ATTRIBUTE, "--", path], check=False)
    fields = raw.split(b"\0")
    value = fields[2].decode("utf-8", "replace") if len(fields) > 2 else "unspecified"
    if value == "unspecified":
        return None
    if value in ("unset", "set"):
        return []
    return [c for c in value.split(",") if c]


def _hunks(path: str, new_path: str, old_file: str, new_file: str) -> list[bytes]:
    """The line diff of the two sides' summaries, from git: its lines from the first hunk
    header on (git's own header names temporary files)."""
    from gitmlx.diffs import sides, summary
    from gitmlx.git import plumbing

    with tempfile.TemporaryDirectory(prefix="gitmlx-diff-") as tmp:
        names = []
        for label, side, name in (("old", old_file, path), ("new", new_file, new_path)):
            target = os.path.join(tmp, label)
            with open(target, "wb") as f:
                if side != sides.DEV_NULL:
                    _write(f, summary.summarize(side, resolve=sides.local_object, name=name))
            names.append(target)
        args = ["diff", "--no-index", "--no-ext-diff", "--no-textconv", "--text", "--", *names]
        text = plumbing.run_git(args, check=False)
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if _ANSI.sub(b"", line).startswith(b"@@"):
            return lines[i:]
    return []


def _side_name(prefix: str, path: str, file: str) -> str:
    from gitmlx.diffs import sides

    return sides.DEV_NULL if file == sides.DEV_NULL else _quote(prefix + path)


def _write(f, lines: Iterable[str]) -> None:
    for line in lines:
        f.write(line.encode("utf-8", "backslashreplace") + b"\n")
