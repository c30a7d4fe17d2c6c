"""The package's layers, held by a check that fails when an import runs up them.

docs/design.md ("Layers") draws the tree; this test is its enforcement. Every import in
gitmlx/ counts, including those inside functions (lazy imports are still dependencies).
The checker works on any folder, so it is first shown failing on a small tree built to
break each rule.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "gitmlx"

#: Each group's rank: a module may import only groups of a lower rank (and its own group).
RANKS = {
    "errors": 0,
    "format": 1,
    "osutil": 1,
    "config": 1,
    "trace": 1,
    "git": 2,
    "remotes": 2,
    "store": 2,
    "context": 3,
    "transfer": 4,
    "diffs": 4,
    "checkout": 5,
    "maintenance": 5,
    "migrate": 5,
    "api": 6,
    "ui": 6,
    "actions": 7,
    "commands": 8,
    "cli_help": 9,
    "cli": 10,
    "__main__": 11,
}
#: The package root only names the public API (loaded lazily by name): it may import anything.
ROOT = "gitmlx"
#: Outside dependencies and the one module (or folder, ending in '/') allowed to import each.
OWNERS = {
    "subprocess": "git/",
    "boto3": "remotes/s3/",
    "botocore": "remotes/s3/",
    "tqdm": "ui",
    "click": ("cli", "cli_help"),
    "pyfastcdc": "format/chunking",
    "zstandard": "format/codec",
    "pyarrow": "diffs/tables",
    "fsspec": "api/fsspec_fs",
    "git_filter_repo": "git/filter_repo",
}
#: Standard modules that do I/O: format/ must not import them.
IO_MODULES = {"os", "io", "pathlib", "shutil", "tempfile", "subprocess", "socket", "sqlite3", "urllib", "http"}
#: os functions that start processes: only git/ may (it is the only git runner).
SPAWNERS = {"system", "popen", "posix_spawn", "posix_spawnp", "spawnl", "spawnv", "execv", "execvp", "fork"}


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. gitmlx.store.objects
    path: str  # relative to the package, without .py, e.g. store/objects
    tree: ast.Module

    @property
    def group(self) -> str:
        return group_of(self.name)


def group_of(dotted: str) -> str:
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ROOT


def modules(package: Path) -> Iterator[Module]:
    for file in sorted(package.rglob("*.py")):
        rel = file.relative_to(package).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        name = ".".join([package.name, *parts])
        yield Module(name, "/".join(parts), ast.parse(file.read_text(encoding="utf-8"), str(file)))


def imports(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of every import, names imported from a package included."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, node.lineno
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno


def _owned(path: str, owner: str | tuple[str, ...]) -> bool:
    if isinstance(owner, tuple):
        return any(_owned(path, one) for one in owner)
    return path.startswith(owner) if owner.endswith("/") else path == owner


def violations(package: Path) -> list[str]:
    found: list[str] = []
    mods = list(modules(package))
    known = {m.name for m in mods}
    for m in mods:
        where = f"{m.path}.py"
        if m.group != ROOT and m.group not in RANKS:
            found.append(f"{where}: group '{m.group}' has no rank (add it to RANKS and docs/design.md)")
            continue
        for name, line in imports(m.tree):
            top = name.split(".")[0]
            if top == package.name:
                if name == package.name or m.group == ROOT:
                    continue
                target = group_of(name)
                if target == ROOT or target not in RANKS:
                    continue  # `from gitmlx import __version__`
                if m.group == "commands" and target == "commands" and name in known and name != m.name:
                    found.append(f"{where}:{line}: a command imports another command ({name})")
                elif target != m.group and RANKS[target] >= RANKS[m.group]:
                    found.append(
                        f"{where}:{line}: {m.group} (rank {RANKS[m.group]}) imports {name} (rank {RANKS[target]})"
                    )
                continue
            owner = OWNERS.get(top)
            if owner is not None and not _owned(m.path, owner):
                found.append(f"{where}:{line}: imports {top}, which only {owner} may import")
            if m.group == "format" and top in IO_MODULES:
                found.append(f"{where}:{line}: format/ does no I/O, but imports {top}")
        for node in ast.walk(m.tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if m.group == "format" and isinstance(func, ast.Name) and func.id == "open":
                found.append(f"{where}:{node.lineno}: format/ does no I/O, but calls open()")
            if (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id == "os"
                and func.attr in SPAWNERS
                and not _owned(m.path, "git/")
            ):
                found.append(f"{where}:{node.lineno}: starts a process (os.{func.attr}); only git/ runs git")
    return found


def test_no_import_runs_up_the_layers() -> None:
    found = violations(PACKAGE)
    assert not found, "layering broken:\n" + "\n".join(found)


def test_the_check_fails_on_a_tree_that_breaks_each_rule(tmp_path: Path) -> None:
    pkg = tmp_path / "gitmlx"
    files = {
        "__init__.py": "",
        "format/__init__.py": "",
        "format/pointer.py": "import os\nopen('x')\n",
        "store/__init__.py": "",
        "store/objects.py": "from gitmlx.commands import push\n",
        "commands/__init__.py": "",
        "commands/push.py": "def run():\n    from gitmlx.commands import pull\n    import tqdm\n",
        "commands/pull.py": "import subprocess\n",
        "remotes/__init__.py": "",
        "remotes/local.py": "import boto3\nimport os\nos.system('git status')\n",
        "gadgets/thing.py": "",
    }
    for rel, text in files.items():
        (pkg / rel).parent.mkdir(parents=True, exist_ok=True)
        (pkg / rel).write_text(text)
    found = "\n".join(violations(pkg))
    for expected in (
        "format/pointer.py:1: format/ does no I/O, but imports os",
        "format/pointer.py:2: format/ does no I/O, but calls open()",
        "store/objects.py:1: store (rank 2) imports gitmlx.commands",
        "commands/push.py:2: a command imports another command (gitmlx.commands.pull)",
        "commands/push.py:3: imports tqdm, which only ui may import",
        "commands/pull.py:1: imports subprocess, which only git/ may import",
        "remotes/local.py:1: imports boto3, which only remotes/s3/ may import",
        "remotes/local.py:3: starts a process (os.system)",
        "gadgets/thing.py: group 'gadgets' has no rank",
    ):
        assert expected in found, f"not reported: {expected}\n{found}"


def test_the_design_tree_names_every_module() -> None:
    """docs/design.md ("Layers") draws the tree a newcomer reads first: every module
    outside commands/ (one per subcommand, named by it) must appear in it by name."""
    design = (PACKAGE.parent / "docs" / "design.md").read_text()
    tree = design.split("```\ngitmlx/\n", 1)[1].split("```", 1)[0]
    named = set(tree.replace(",", " ").replace("(", " ").replace(")", " ").split())
    missing = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__init__.py"
        and "commands" not in path.parts
        and path.stem not in named
        and f"{path.stem}.py" not in named
    ]
    assert missing == [], "add these to docs/design.md's tree"
