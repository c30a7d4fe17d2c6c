"""What git's index holds for a path the clean filter is asked about.

Owns: finding the pointer text git's index has for a path, for clean's comparison with
the stored object, at the least cost to the filter's start: git's index file names the
blob, and a blob `git add` just wrote is loose and pointer-sized (git/index_file.py,
git/loose.py); `git ls-files` and `cat-file` only for a packed blob or an index this code
cannot read, once per process.
Must not: decide anything about cleaning.
"""

from __future__ import annotations

import os

from gitmlx.context import RepoContext
from gitmlx.format import pointer as pointers


class IndexPointers:
    def __init__(self, ctx: RepoContext) -> None:
        self._ctx = ctx
        self._listed: dict[str, bytes] | None = None
        self._index_read = False
        self._index_ids: dict[str, bytes | None] | None = None

    def pointer(self, path: str) -> bytes | None:
        """The pointer text git's index holds for `path`.

        Read without starting git when possible: git's index file names the blob, and a
        blob `git add` just wrote is loose and pointer-sized. Otherwise (a packed blob,
        an index this code cannot read) `git ls-files` and `cat-file`, once per process.
        """
        if not path or self._ctx.paths.work_tree is None:
            return None
        if self._listed is None:
            entries = self._entries()
            if entries is not None:
                if path not in entries:
                    return None  # a new file (`git add` of it)
                blob_id = entries[path]
                if blob_id is None:
                    return None  # in conflict: no one pointer
                from gitmlx.git import loose

                text = loose.read_small_blob(
                    self._ctx.paths.common_dir, blob_id, self.object_format(), pointers.MAX_POINTER_SIZE
                )
                if text is not None:
                    found = pointers.parse(text)
                    return found.encode() if found is not None else None
            from gitmlx.git import scan

            # git runs this filter only on paths with filter=mlx: no attribute check needed.
            listed = scan.pointers_in_index(self._ctx.top, tracked_only=False)
            self._listed = {f.path: f.pointer.encode() for f in listed}
        return self._listed.get(path)

    def object_format(self) -> str:
        """The repository's object format: "sha1" or "sha256"."""
        return self._ctx.config.git("extensions.objectformat") or "sha1"

    def _entries(self) -> dict[str, bytes | None] | None:
        """Path -> stage-0 blob id, read from git's index file once; None when it cannot be
        (GIT_INDEX_FILE names another, a split index, a format this code does not know)."""
        if not self._index_read:
            self._index_read = True
            if "GIT_INDEX_FILE" not in os.environ:
                from gitmlx.git import index_file

                try:
                    self._index_ids = index_file.blob_ids(self._ctx.paths.git_dir / "index", self.object_format())
                except FileNotFoundError:
                    self._index_ids = {}  # no index yet: nothing is in it
                except (OSError, ValueError, KeyError):
                    self._index_ids = None
        return self._index_ids
