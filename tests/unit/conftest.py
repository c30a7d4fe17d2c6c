"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitmlx.store.objects import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """An empty local store in a temporary folder."""
    return Store(tmp_path / "mlx")
