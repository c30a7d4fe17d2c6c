"""checkout.progress: each object counted once, whether its download ran before or after
git asked for it (a clone's fetch-ahead), and bytes never above the total."""

from __future__ import annotations

from gitmlx.checkout.progress import CheckoutProgress
from gitmlx.format.pointer import Pointer


class Recorder:
    def __init__(self) -> None:
        self.shown: list[tuple[int, int, int, int]] = []
        self.closed = 0

    def update(self, files_done: int, files_total: int, bytes_done: int, bytes_total: int) -> None:
        self.shown.append((files_done, files_total, bytes_done, bytes_total))

    def close(self) -> None:
        self.closed += 1


def test_objects_count_once_whatever_the_order_of_request_and_download() -> None:
    shown = Recorder()
    progress = CheckoutProgress(shown)
    local, ahead, later = (Pointer(c * 64, size) for c, size in (("a", 100), ("b", 200), ("c", 300)))
    progress.want(local, stored=True)
    progress.moved(ahead, 150)  # fetched ahead, before git asks
    progress.fetched(ahead)
    progress.want(ahead, stored=True)
    progress.want(local, stored=True)  # another file with the same object
    progress.want(later, stored=False)
    progress.moved(later, 200)
    progress.moved(later, 500)  # more than the object: capped
    assert shown.shown[-1] == (2, 3, 600, 600)
    progress.fetched(later)
    progress.fetched(later)
    assert shown.shown[-1] == (3, 3, 600, 600)
    progress.finish()
    assert shown.closed == 1
    progress.want(later, stored=False)
    assert shown.shown[-1] == (0, 1, 0, 300)
