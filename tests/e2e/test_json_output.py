"""`--json` output: one JSON document on stdout, with the fields docs/json-output.md lists.

The contract test reads the field tables from that page (tests/support/json_contract.py),
so the page and the code cannot drift apart: a field the code prints but the page does
not list fails, and so does a listed field that is missing or of another type.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.commands import Result, git, mlx
from tests.support.content import write_random
from tests.support.json_contract import fields, problems, specs
from tests.support.repos import Repos, add_commit, clone, corrupt_remote_object
from tests.support.stores import corrupt_local_object

SKIP = {"GIT_MLX_SKIP_SMUDGE": "1"}
#: Documented fields no state below produces: a checkout failure after a good fetch, and
#: a failed push (both need damage the other commands' runs already cover for the
#: shared transfer fields).
NEVER_SEEN = {"checkout.failed[].path", "checkout.failed[].error"}


def document(result: Result) -> dict:
    """The one JSON document `result` printed on stdout (json.loads fails on anything more)."""
    assert result.stdout.strip(), f"no JSON on stdout:\n{result}"
    return json.loads(result.stdout)


def ls_files(repo: Path) -> dict[str, dict]:
    return {f["path"]: f for f in document(mlx("ls-files", "--json", cwd=repo))["files"]}


def test_ls_files_json_in_full_and_skip_smudge_clones(repos: Repos, sealed) -> None:
    shas = add_commit(repos.work, {"a.bin": 3000, "models/b.bin": 70_000})
    git("push", "-q", "origin", "main", cwd=repos.work)
    full, thin = sealed.root / "full", sealed.root / "thin"
    clone(repos.remote, full)
    clone(repos.remote, thin, env=SKIP)
    sizes = {"a.bin": 3000, "models/b.bin": 70_000}
    for repo, present in ((full, True), (thin, False)):
        files = ls_files(repo)
        assert sorted(files) == ["a.bin", "models/b.bin"]
        for path, entry in files.items():
            assert entry["oid"] == shas[path] and len(entry["oid"]) == 64
            assert entry["size"] == sizes[path]
            assert entry["present"] is present, (repo, entry)
            assert entry["stored"] is present
    mlx("pull", "-q", cwd=thin)
    assert all(f["present"] for f in ls_files(thin).values())


def test_every_json_document_matches_the_documented_fields(repos: Repos, sealed) -> None:
    contract = specs()
    assert set(contract) == {"ls-files", "status", "env", "du", "fsck", "push", "fetch", "pull"}
    seen: dict[str, set[str]] = {command: set() for command in contract}

    def check(command: str, result: Result) -> dict:
        doc = document(result)
        assert doc["schema"] == 1 and doc["command"] == command, doc
        assert not problems(doc, contract[command]), (command, problems(doc, contract[command]), doc)
        seen[command] |= set(fields(doc, contract[command]))
        return doc

    shas = add_commit(repos.work, {"a.bin": 3000, "b.bin": 5000})
    git("push", "-q", "origin", "main", cwd=repos.work)
    full, thin, broken = sealed.root / "full", sealed.root / "thin", sealed.root / "broken"
    clone(repos.remote, full)
    clone(repos.remote, thin, env=SKIP)
    check("ls-files", mlx("ls-files", "--json", cwd=full))
    check("ls-files", mlx("ls-files", "--all", "--json", cwd=full))
    check("pull", mlx("pull", "--json", cwd=thin))

    # status: one of each list (committed not pushed, staged new and deleted, modified)
    write_random(repos.work / "c.bin", 2000, "c")
    git("add", "c.bin", cwd=repos.work)
    git("commit", "-q", "-m", "c", cwd=repos.work)
    write_random(repos.work / "d.bin", 2000, "d")
    git("add", "d.bin", cwd=repos.work)
    git("rm", "-q", "--cached", "b.bin", cwd=repos.work)
    write_random(repos.work / "a.bin", 3000, "edited")
    status = check("status", mlx("status", "--json", cwd=repos.work))
    assert {f["path"] for f in status["unpushed"]} == {"c.bin"}
    assert {(f["path"], f["oid"]) for f in status["staged"]} >= {("b.bin", None)}
    assert [f["path"] for f in status["modified"]] == ["a.bin"]

    pushed = check("push", mlx("push", "--json", cwd=repos.work))
    assert pushed["moved"] == 1 and pushed["already_there"] == 2
    check("env", mlx("env", "--json", cwd=repos.work))
    check("du", mlx("du", "--json", cwd=repos.work))

    # damage: a corrupt local copy, and an object gone from the remote
    corrupt_local_object(full, shas["a.bin"])
    corrupt_remote_object(repos.remote, shas["b.bin"], how="delete")
    fsck = check("fsck", mlx("fsck", "--remote", "--json", cwd=full, check=False))
    assert fsck["ok"] is False and fsck["local"]["corrupt"] and fsck["remote"]["problems"]
    clone(repos.remote, broken, env=SKIP)
    fetched = check("fetch", mlx("fetch", "--json", cwd=broken, check=False))
    assert [f["oid"] for f in fetched["failed"]] == [shas["b.bin"]]
    check("pull", mlx("pull", "--json", cwd=broken, check=False))
    repaired = check("fsck", mlx("fsck", "--remote", "--repair", "--json", cwd=repos.work))
    assert repaired["ok"] is True and repaired["repair"]["uploaded"] == 1
    check("fsck", mlx("fsck", "--json", cwd=repos.work))

    unseen = {f"{command} {path}" for command, spec in contract.items() for path in set(spec) - seen[command]}
    allowed = {f"pull {path}" for path in NEVER_SEEN} | {f"push {p}" for p in contract["push"] if "failed[]." in p}
    assert unseen <= allowed, f"documented but never printed: {sorted(unseen - allowed)}"
