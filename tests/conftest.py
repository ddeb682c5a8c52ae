"""Shared fixtures: where the real face data lives, and how its absence is reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent


# Property-based tests (hypothesis): the default profile runs in `make test`; the slow one is a command run
# by hand, at least 10,000 examples per target (docs/security.md):
#   .venv/bin/python -m pytest -p no:cacheprovider --hypothesis-profile=slow -m properties tests
settings.register_profile("default", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow", max_examples=10_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def pytest_configure(config: pytest.Config) -> None:
    """Load the profile named by --hypothesis-profile or $HYPOTHESIS_PROFILE, else ours called default."""
    settings.load_profile(config.getoption("hypothesis_profile", None) or
                          os.environ.get("HYPOTHESIS_PROFILE", "default"))


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
