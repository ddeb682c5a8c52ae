"""The clock boundary: the real clock and the stand-in honour the same contract."""

from __future__ import annotations

import time

import pytest

from firmware.hardware.clock import Clock, FakeClock, SystemClock


@pytest.mark.parametrize("make", [SystemClock, FakeClock])
def test_contract(make: type) -> None:
    clock = make()
    assert isinstance(clock, Clock)
    t0, m0 = clock.time(), clock.monotonic()
    assert t0 > 1.6e9  # Unix seconds, not milliseconds or a tick count
    assert clock.monotonic() >= m0


def test_system_clock_follows_time() -> None:
    assert abs(SystemClock().time() - time.time()) < 1.0


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(wall=1_800_000_000.0, mono=5.0)
    assert (clock.time(), clock.monotonic()) == (1_800_000_000.0, 5.0)
    clock.advance(31 * 86400)
    assert (clock.time(), clock.monotonic()) == (1_800_000_000.0 + 31 * 86400, 5.0 + 31 * 86400)
    clock.set(1_700_000_000.0)  # an NTP step back moves wall time only
    assert clock.time() == 1_700_000_000.0 and clock.monotonic() == 5.0 + 31 * 86400
    with pytest.raises(ValueError, match="cannot move a clock back"):
        clock.advance(-1)
