"""An fsspec filesystem over one revision of a repository: the `gitmlx` protocol.

    import pandas as pd
    df = pd.read_parquet("gitmlx://data/train.parquet?rev=v1", columns=["text"])

    import fsspec, pyarrow.dataset as ds
    fs = fsspec.filesystem("gitmlx", repo="path/to/checkout", rev="v1")
    table = ds.dataset("data/train.parquet", filesystem=fs, format="parquet").to_table()

fsspec finds the class through the `fsspec.specs` entry point gitmlx installs, so pandas,
pyarrow, Hugging Face `datasets` and anything else that takes an fsspec URL or filesystem
read artifacts at any revision without a checkout. Files open as `gitmlx.open` opens them
(gitmlx.api.artifacts): from the local store when it has the object, else lazily from the
artifact remote, a read fetching only the chunks that cover it. See docs/python-api.md.

Owns: the URL form (`gitmlx://PATH?rev=REV&repo=REPO&remote=REMOTE`, or the same as
filesystem options), listing a revision's tree with artifacts at their real sizes, and
the only import of fsspec (an optional extra: `pip install 'gitmlx[fsspec]'`).
Must not: write anything (the filesystem is read-only), or read a file's content to list it.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

from fsspec import AbstractFileSystem

from gitmlx.api import artifacts
from gitmlx.git import plumbing, scan

PROTOCOL = "gitmlx"
#: Query parameters of a URL that become filesystem options.
OPTIONS = ("rev", "repo", "remote")
_POINTER_MAX = 1024  # larger blobs cannot be pointers: listed at their own size


class GitMlxFileSystem(AbstractFileSystem):
    """Read-only files of revision `rev` of `repo` (a checkout, a bare repository or a
    clone URL; default: the repository holding the current directory). Paths are relative
    to the top of the repository; `remote` picks an artifact remote as in `gitmlx.open`."""

    protocol = PROTOCOL
    root_marker = ""

    def __init__(self, repo: str | os.PathLike[str] = ".", rev: str = "HEAD", remote: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.repo = os.fspath(repo)
        self.rev = rev
        self.remote = remote
        self._top: str | None = None

    # -- URLs -------------------------------------------------------------------------

    @classmethod
    def _strip_protocol(cls, path):  # type: ignore[override]
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        text = os.fspath(path)
        text = text.removeprefix(f"{PROTOCOL}://").removeprefix(f"{PROTOCOL}::")
        return text.split("?", 1)[0].strip("/")

    @staticmethod
    def _get_kwargs_from_urls(path: str) -> dict[str, str]:
        if "?" not in path:
            return {}
        query = parse_qs(path.split("?", 1)[1], keep_blank_values=False, strict_parsing=False)
        unknown = sorted(set(query) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown gitmlx URL parameter(s) {unknown}: use {', '.join(OPTIONS)}")
        return {key: values[-1] for key, values in query.items()}

    def unstrip_protocol(self, name: str) -> str:
        return f"{PROTOCOL}://{name}?rev={self.rev}"

    # -- listing ----------------------------------------------------------------------

    def _top_dir(self) -> str:
        if self._top is None:
            ctx, _ = artifacts.repository(self.rev, self.repo)
            self._top = str(ctx.top)
        return self._top

    def _entries(self, path: str, inside: bool) -> list[dict[str, Any]]:
        """`git ls-tree` of `path` (its contents when `inside`) at the revision."""
        spec = [f"{path}/"] if inside and path else ([path] if path else [])
        out = plumbing.run_git(["ls-tree", "-z", "-l", self.rev, "--", *spec], cwd=self._top_dir(), check=False)
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, name = record.split(b"\t", 1)
            mode, kind, sha, size = meta.split()
            entries.append(self._entry(name.decode("utf-8", "surrogateescape"), kind.decode(), sha.decode(), size))
        return entries

    def _entry(self, name: str, kind: str, sha: str, size: bytes) -> dict[str, Any]:
        if kind != "blob":
            return {"name": name, "size": 0, "type": "directory"}
        length = int(size)
        if length <= _POINTER_MAX:
            blob = scan.blob_at(self._top_dir(), self.rev, name)
            if blob is not None and blob.pointer is not None:
                length = blob.pointer.size
        return {"name": name, "size": length, "type": "file", "sha": sha}

    def ls(self, path: str, detail: bool = True, **kwargs: Any):  # type: ignore[override]
        path = self._strip_protocol(path)
        entries = self._entries(path, inside=True)
        if not entries:
            entries = [self.info(path)]
            if entries[0]["type"] == "directory":
                entries = []
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        if not path:
            return {"name": "", "size": 0, "type": "directory"}
        found = self._entries(path, inside=False)
        if len(found) != 1 or found[0]["name"] != path:
            raise FileNotFoundError(f"'{path}' does not exist at '{self.rev}'")
        return found[0]

    # -- reading ----------------------------------------------------------------------

    def _open(self, path: str, mode: str = "rb", **kwargs: Any):  # type: ignore[override]
        if mode != "rb":
            raise NotImplementedError(f"gitmlx:// is read-only: mode {mode!r} is not supported")
        target = artifacts.locate(self._strip_protocol(path), self.rev, self.repo)
        return artifacts.open_target(target, self.remote)

    def ukey(self, path: str) -> str:
        return self.info(path).get("sha", "")
