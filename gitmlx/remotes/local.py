"""A remote that is a plain directory (the embedded default beside a local git remote).

Owns: reading and writing objects under one root directory.
Must not: know what the keys mean.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from gitmlx import trace
from gitmlx.errors import ObjectNotFound, RemoteError
from gitmlx.format import layout
from gitmlx.osutil import fastcopy
from gitmlx.remotes.base import ProgressCallback, RemoteEntry, Sink, check_key

_BLOCK = 1024 * 1024
#: A writer never leaves a `tmp/put-*` file untouched this long (docs/storage-format.md):
#: older ones are a killed writer's, whatever grace period the caller asks for.
_WRITER_IDLE_MAX = 86400


class LocalRemote:
    """Objects are files under `root`; writes go to `root/tmp/` and are renamed in."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.display_url = self.root.as_uri() if self.root.is_absolute() else str(self.root)
        self.copies_are_local = True
        self.identity = f"{self.display_url}|"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    @trace.timed("remote", "dir EXISTS")
    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    @trace.timed("remote", "dir SIZE")
    def size(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):  # a file where a folder goes: no key, as in exists()
            return None

    def staging_path(self) -> Path:
        """`tmp/put-…`: a file built there (a push's pack) is renamed to its key, never
        copied, even when the remote is on another file system than the local store. A
        killed writer's file is left there, as a killed copy's is, until `gc --remote`
        (`abort_stale_uploads`)."""
        tmp_dir = self.root / "tmp"
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RemoteError(
                f"cannot write to remote '{self.display_url}': {exc.strerror or exc}",
                "check that the directory exists and is writable",
            ) from exc
        return tmp_dir / self._tmp_name()

    @staticmethod
    def _tmp_name() -> str:
        return f"{layout.DIRECTORY_WRITE_PREFIX}{os.getpid()}-{secrets.token_hex(8)}"

    @trace.timed("remote", "dir PUT", size=lambda args: os.stat(args[0]).st_size)
    def put_file(self, key: str, path: Path, progress: ProgressCallback | None = None, consume: bool = False) -> None:
        final = self._path(key)
        tmp_dir = self.root / "tmp"
        if consume and self._move(path, final, tmp_dir, progress):
            return
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            tmp = tmp_dir / self._tmp_name()
            try:
                with open(path, "rb") as src, open(tmp, "xb") as dst:
                    size = os.fstat(src.fileno()).st_size
                    fastcopy.copy_file(src, dst, size)
                    if progress:
                        progress(size)
                    os.fsync(dst.fileno())
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            finally:
                if tmp.exists():
                    tmp.unlink()
        except OSError as exc:
            raise RemoteError(
                f"cannot write to remote '{self.display_url}': {exc.strerror or exc}",
                "check that the directory exists and is writable",
            ) from exc

    def _move(self, path: Path, final: Path, tmp_dir: Path, progress: ProgressCallback | None) -> bool:
        """Rename `path` in (same file system only), after an fsync; False to copy instead."""
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            tmp = tmp_dir / self._tmp_name()
            with open(path, "rb") as f:
                os.fsync(f.fileno())
            size = os.stat(path).st_size
            os.rename(path, tmp)  # EXDEV across file systems: copy instead
        except OSError:
            return False
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise RemoteError(
                f"cannot write to remote '{self.display_url}': {exc.strerror or exc}",
                "check that the directory exists and is writable",
            ) from exc
        if progress:
            progress(size)
        return True

    @trace.timed("remote", "dir GET", size=lambda args: args[3] if len(args) > 3 else None)
    def get(
        self,
        key: str,
        sink: Sink,
        offset: int = 0,
        progress: ProgressCallback | None = None,
        length: int | None = None,
    ) -> None:
        try:
            src = open(self._path(key), "rb")  # noqa: SIM115
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"'{key}' is not on remote '{self.display_url}'") from None
        except OSError as exc:
            raise RemoteError(f"cannot read remote '{self.display_url}': {exc}") from exc
        left = -1 if length is None else length
        with src:
            src.seek(offset)
            while left and (block := src.read(_BLOCK if left < 0 else min(_BLOCK, left))):
                sink.write(block)
                if left > 0:
                    left -= len(block)
                if progress:
                    progress(len(block))

    @trace.timed("remote", "dir GET range", size=lambda args: args[1])
    def read_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with open(self._path(key), "rb") as src:
                src.seek(start)
                # No more than the file holds: read(n) allocates n bytes up front, and
                # callers pass generous limits (a 256 MiB gc note cap for a 1 KiB note).
                return src.read(max(0, min(length, os.fstat(src.fileno()).st_size - start)))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(f"'{key}' is not on remote '{self.display_url}'") from None
        except OSError as exc:  # a folder where an object should be, permissions
            raise RemoteError(f"cannot read '{key}' on remote '{self.display_url}': {exc.strerror or exc}") from exc

    def list(self, prefix: str = "") -> Iterator[RemoteEntry]:
        # Walk only below the prefix's folder: pushes list the small gc/ folder, and must
        # not pay for a walk of every pack and manifest.
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*folder.split("/")) if folder else self.root
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, self.root)
            if rel_dir == "tmp":
                dirnames[:] = []
                continue
            for name in filenames:
                key = name if rel_dir == "." else f"{rel_dir.replace(os.sep, '/')}/{name}"
                if key.startswith(prefix):
                    yield RemoteEntry(key, os.stat(os.path.join(dirpath, name)).st_size)

    @trace.timed("remote", "dir DELETE")
    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def abort_stale_uploads(self, started_before: float) -> int:
        """Delete the `tmp/put-*` files a killed writer left (the directory's form of an
        unfinished multipart upload: a pack or a copy never renamed to its key), untouched
        since `started_before` and for at least a day. How many."""
        cutoff = min(started_before, time.time() - _WRITER_IDLE_MAX)
        try:
            entries = list(os.scandir(self.root / "tmp"))
        except (FileNotFoundError, NotADirectoryError):
            return 0
        removed = 0
        for entry in entries:
            if not entry.name.startswith(layout.DIRECTORY_WRITE_PREFIX):
                continue  # not a remote writer's: the repository's own store shares tmp/
            try:
                if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass  # renamed into place or removed meanwhile
        return removed

    def __repr__(self) -> str:
        return f"LocalRemote({self.display_url!r})"
