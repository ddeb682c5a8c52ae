"""Time as a hardware boundary: wall-clock seconds for records, monotonic seconds for intervals.

Retention, audit and deployments read time only through a `Clock`, so tests move a `FakeClock` 31 days
forward instead of waiting, and the demo can replay a scene at a chosen date.
"""

from __future__ import annotations

import threading
import time as _time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Source of time: `time()` is Unix wall time in seconds (UTC), `monotonic()` never goes backwards."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clocks of the device (`time.time`, `time.monotonic`)."""

    def time(self) -> float:
        return _time.time()

    def monotonic(self) -> float:
        return _time.monotonic()


class FakeClock:
    """A settable stand-in: time stands still until `advance()` or `set()` moves it; thread-safe."""

    def __init__(self, wall: float = 1_767_225_600.0, mono: float = 1000.0) -> None:
        """Start at `wall` Unix seconds (default 2026-01-01 00:00 UTC) and `mono` monotonic seconds."""
        self._wall = float(wall)
        self._mono = float(mono)
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds` (must not be negative: monotonic time never goes back)."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock back ({seconds} s)")
        with self._lock:
            self._wall += seconds
            self._mono += seconds

    def set(self, wall: float) -> None:
        """Set the wall clock to `wall` Unix seconds (like an NTP step); monotonic time is left alone."""
        with self._lock:
            self._wall = float(wall)
