"""Shared fixtures: where the real face data lives, and how its absence is reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    """`LFR_TEST_DATA`, default `../shared/data` beside the repository."""
    return Path(os.environ.get("LFR_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


def require_data(relative: str = "") -> Path:
    """The path inside the shared data, or skip (fail in CI, where LFR_REQUIRE_DATA=1) when it is absent."""
    path = shared_data_dir() / relative
    if not path.exists():
        reason = f"real face data not found at {path} (set LFR_TEST_DATA)"
        if os.environ.get("LFR_REQUIRE_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_data()


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    return require_data("lfw")
