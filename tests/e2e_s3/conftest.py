"""Every test in this folder runs real git in the sealed environment (tests/support/sealed.py)."""

from __future__ import annotations

import pytest

from tests.support.sealed import Sealed


@pytest.fixture(autouse=True)
def _sealed_here(sealed: Sealed) -> Sealed:
    return sealed
