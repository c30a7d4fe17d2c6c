"""The spare file of a checkout's placements: `<git-dir>/mlx-spare.<pid>`.

Owns: that file, swapping it with the pointer files git wrote, and removing the spares
of processes that are gone.
Must not: decide what goes into it (objectfile fills it) or which files are placed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

from gitmlx.checkout.objectfile import process_alive
from gitmlx.errors import MlxError
from gitmlx.osutil import oscalls

#: `<git-dir>/mlx-spare.<pid>`: the spare file of a checkout's placements (SpareFile).
SPARE_PREFIX = "mlx-spare."


class SpareFile:
    """The file that every placement of a checkout writes an object into and then swaps
    with the pointer file git wrote.

    Why not a new temporary file renamed over the pointer: the rename frees the pointer
    file's inode, and an ext4 file system without a journal, when it allocates an inode,
    skips every one freed in the last half minute or so, reading each one's inode-table
    block to find out (the kernel's `recently_deleted`). In a clone of many files, git's
    creates and ours scanned ever longer runs of freed inodes, and so did the next 30
    seconds of anybody's creates in those block groups. A swap (renameat2
    RENAME_EXCHANGE) is as atomic as the rename (the work-tree file holds its pointer or
    the whole object, never anything else) and frees nothing: the pointer's inode, now
    under the spare's name, is overwritten with the next file. A checkout creates one
    inode and frees one, whatever its number of files.

    The swap also tells whether git's pointer file was still there: when the name held
    another file by then (replaced between the check and the swap: another inode, or
    the same number with another modification time or size), it is swapped back.
    A killed process leaves the spare behind; the next checkout's first placement deletes
    the spares of processes that are gone.
    """

    def __init__(self, git_dir: Path) -> None:
        self.path = os.path.join(git_dir, f"{SPARE_PREFIX}{os.getpid()}")
        self._git_dir = git_dir
        #: The device of the git dir; None until first used, -1 where swaps do not work.
        self._device: int | None = None
        self._exists = False

    def open(self, device: int, mode: int) -> int | None:
        """The spare, with permission bits `mode`, open for writing at offset 0 (holding a
        pointer's text, or nothing); None when it cannot serve a file on `device`
        (another file system, or no swaps here)."""
        if self._device is None:
            self._device = self._start()
        if self._device != device:
            return None
        try:
            return self._open(mode)
        except OSError:
            self.disable()  # cannot write in the git dir: temporary files beside the targets
            return None

    def _open(self, mode: int) -> int:
        flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        if self._exists:
            fd = os.open(self.path, flags)
            st = os.fstat(fd)
            if st.st_nlink == 1 and stat.S_ISREG(st.st_mode):
                # Not emptied: the object is written over the old pointer text from offset
                # 0 and the file cut to its size after (`objectfile.fill`). ext4 takes a
                # file truncated to 0 for a file being replaced and flushes it when closed
                # (auto_da_alloc), which costs far more than the copy.
                if stat.S_IMODE(st.st_mode) != mode:
                    os.fchmod(fd, mode)
                return fd
            # The pointer file had another name too (a hard link made after git wrote
            # it): never write into a file that is somewhere else as well.
            os.close(fd)
            self.remove()
        fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, mode)
        self._exists = True
        return fd

    def adopt(self, device: int, move: Callable[[str], int | None]) -> int | None:
        """Make the file `move` puts under the spare's name (by rename, on `device`) the
        spare: its descriptor, or None when the spare cannot serve `device` or `move`
        could not (the spare is then as before)."""
        if self._device is None:
            self._device = self._start()
        if self._device != device:
            return None
        # The last swap left a pointer file here: deleted first, since a rename that replaces
        # a file makes ext4 start writing the renamed one back at once (auto_da_alloc).
        self.remove()
        fd = move(self.path)
        if fd is not None:
            self._exists = True
        return fd

    def swap(self, target: str, pointer_file: os.stat_result) -> bool:
        """Exchange the filled spare with `target`, which held the pointer file
        `pointer_file`; False, `target` back as it was, when it was another file by then.
        OSError when the file system cannot swap."""
        oscalls.exchange(self.path, target)
        now = os.lstat(self.path)
        # The inode number alone could be a new file's (a freed number is reused at once);
        # the exchange changed the ctime but not the modification time or size.
        if _identity(now) == _identity(pointer_file):
            return True
        try:
            oscalls.exchange(self.path, target)
        except OSError as exc:
            # The spare's name holds the other file now: never delete it (nor reuse it).
            self._exists, self._device = False, -1
            raise MlxError(
                f"'{target}' changed during the checkout and could not be put back "
                f"({exc.strerror or exc}): its bytes are in '{self.path}'",
                f"move '{self.path}' back to '{target}'",
            ) from exc
        return False

    def disable(self) -> None:
        """Swaps failed here: delete the spare; placements create temporary files."""
        self._device = -1
        self.remove()

    def remove(self) -> None:
        """Delete the spare (the end of a checkout)."""
        if self._exists:
            self._exists = False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _start(self) -> int:
        if not oscalls.can_exchange():
            return -1
        try:
            names = [n for n in os.listdir(self._git_dir) if n.startswith(SPARE_PREFIX)]
            for name in names:
                pid = name[len(SPARE_PREFIX) :]
                # Ours by name is a dead process's whose pid was reused.
                if pid.isdigit() and (int(pid) == os.getpid() or not process_alive(int(pid))):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self._git_dir, name))
            return os.stat(self._git_dir).st_dev
        except OSError:
            return -1


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size
