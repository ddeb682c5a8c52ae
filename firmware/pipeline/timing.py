"""Per-stage timings kept in memory: calls, total and longest duration, in milliseconds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimings:
    """Accumulates stage durations; `take()` returns and resets them (for a StatsDelta), `merge` adds some."""

    def __init__(self) -> None:
        self._data: dict[str, list[float]] = {}

    @contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, (time.perf_counter() - start) * 1000.0)

    def add(self, stage: str, ms: float) -> None:
        entry = self._data.setdefault(stage, [0.0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += ms
        entry[2] = max(entry[2], ms)

    def merge(self, other: dict[str, list[float]]) -> None:
        for stage, (calls, total, longest) in other.items():
            entry = self._data.setdefault(stage, [0.0, 0.0, 0.0])
            entry[0] += calls
            entry[1] += total
            entry[2] = max(entry[2], longest)

    def take(self) -> dict[str, list[float]]:
        data, self._data = self._data, {}
        return data

    def snapshot(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in self._data.items()}

    def summary(self) -> dict[str, dict[str, float]]:
        """stage → {calls, mean_ms, max_ms}, for `--json` output and the journal."""
        return {stage: {"calls": int(c), "mean_ms": round(t / c, 3) if c else 0.0, "max_ms": round(m, 3)}
                for stage, (c, t, m) in sorted(self._data.items())}
