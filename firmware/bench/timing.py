"""Latency samples and their summary: the benchmarks time each call with `perf_counter_ns`.

The machine the figures come from is shared and noisy, so every benchmark reports percentiles (p50 is the
typical call, p99 the tail a live camera feels) and compares variants measured in the same run, as ratios.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Samples:
    """Durations of repeated calls of one step, in seconds."""

    name: str
    seconds: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.seconds.append(seconds)

    def summary(self) -> dict[str, float]:
        """p50, p99 and mean in milliseconds, and the number of calls."""
        if not self.seconds:
            return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan"), "mean_ms": float("nan")}
        a = np.asarray(self.seconds) * 1e3
        return {"n": len(a), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
                "mean_ms": float(a.mean())}


def timed(samples: Samples, fn: Callable[..., Any], *args: Any) -> Any:
    """Call `fn(*args)`, add its wall time to `samples`, and return its result."""
    t0 = time.perf_counter_ns()
    out = fn(*args)
    samples.add((time.perf_counter_ns() - t0) * 1e-9)
    return out


def repeat(fn: Callable[[], Any], runs: int, warmup: int = 3) -> Samples:
    """Time `runs` calls of `fn` after `warmup` untimed ones (first calls pay for caches and allocation)."""
    for _ in range(warmup):
        fn()
    s = Samples(getattr(fn, "__name__", "call"))
    for _ in range(runs):
        timed(s, fn)
    return s


def ratio(a: float, b: float) -> float:
    """a / b, NaN when b is zero: speeds are quoted against a baseline measured in the same run."""
    return a / b if b else float("nan")
