"""The `--json` contract as docs/json-output.md writes it, read back for the tests.

Owns: parsing the field tables of that page (`field | type | meaning`, one table per
command section) and checking a document against one: every documented field is there
(where its parent is) with a documented type, and nothing undocumented is printed.
Must not: import gitmlx: the page is the contract, not the code.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "json-output.md"

_SECTION = re.compile(r"^## `git mlx (.+)`$")
_ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+) \|")
_COMMAND = re.compile(r"git mlx ([a-z-]+) --json")

#: Field path → the types it may have ("integer", "array of string", "object or null", ...).
Spec = dict[str, set[str]]


def specs(doc: Path = DOC) -> dict[str, Spec]:
    """Each command's documented fields, from the tables under its `## ...` heading."""
    found: dict[str, Spec] = {}
    current: list[str] = []
    for line in doc.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            heading = line.removeprefix("## ")
            current = _COMMAND.findall(heading)
            for command in current:
                found[command] = {}
            continue
        row = _ROW.match(line)
        if row and current:
            types = {t.strip() for t in row.group(2).split(" or ")}
            for command in current:
                found[command][row.group(1)] = types
    return found


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        kinds = {_type_of(v) for v in value}
        return f"array of {kinds.pop()}" if len(kinds) == 1 else "array" if not kinds else "array of mixed"
    return "object"


def _matches(value: object, types: set[str]) -> bool:
    kind = _type_of(value)
    if kind == "integer" and "number" in types:
        return True
    if kind == "array":  # empty: any array type fits
        return any(t.startswith("array") for t in types)
    return kind in types


def fields(value: object, spec: Spec, prefix: str = "") -> dict[str, list[object]]:
    """Every field path in `value`, with the values at it (objects' data-named fields as `.*`)."""
    out: dict[str, list[object]] = {}
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            if path not in spec and f"{prefix}.*" in spec:
                path = f"{prefix}.*"
            out.setdefault(path, []).append(child)
            for sub, values in fields(child, spec, path).items():
                out.setdefault(sub, []).extend(values)
    elif isinstance(value, list):
        for item in value:
            out.setdefault(f"{prefix}[]", []).append(item)
            for sub, values in fields(item, spec, f"{prefix}[]").items():
                out.setdefault(sub, []).extend(values)
    return out


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0] if "." in path else ""


def problems(document: object, spec: Spec) -> list[str]:
    """What in `document` breaks `spec`: undocumented fields, wrong types, missing fields."""
    found = fields(document, spec)
    wrong = [f"undocumented field '{p}'" for p in found if p not in spec and not p.endswith("[]")]
    for path, types in spec.items():
        for value in found.get(path, []):
            if not _matches(value, types):
                wrong.append(f"'{path}' is {_type_of(value)}, documented as {' or '.join(sorted(types))}")
        if path.endswith(".*"):
            continue
        parent = _parent(path)
        holders = [document] if not parent else [v for v in found.get(parent, []) if isinstance(v, dict)]
        missing = sum(1 for holder in holders if isinstance(holder, dict) and path.rsplit(".", 1)[-1] not in holder)
        if missing:
            wrong.append(f"documented field '{path}' missing in {missing} place(s)")
    return wrong
