"""The wall clock behind a Protocol, so validity windows and retention can be tested at any instant."""

from __future__ import annotations

import time as _time
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time."""

    def time(self) -> float:
        """Seconds since the Unix epoch (UTC), like `time.time()`."""
        ...


class SystemClock:
    """The real wall clock of the device (set by NTP or the RTC)."""

    def time(self) -> float:
        return _time.time()


class FakeClock:
    """A settable clock for tests and the demo: time stands still until `set` or `advance` moves it."""

    def __init__(self, now: float = 0.0) -> None:
        self._now = float(now)

    def time(self) -> float:
        return self._now

    def set(self, now: float) -> None:
        """Jump to `now`, in seconds since the epoch."""
        self._now = float(now)

    def advance(self, seconds: float) -> None:
        """Move forward (or back, if negative) by `seconds`."""
        self._now += float(seconds)
