"""Shared test fixtures. Tests that need ../shared/data skip cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository; skips the test when it is not there."""
    if not (SHARED_DATA / "celeba_small").is_dir():
        pytest.skip("../shared/data is not present (development photos are optional)")
    return SHARED_DATA
