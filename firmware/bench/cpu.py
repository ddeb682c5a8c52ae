"""CPU use of this process over a block of code: CPU seconds of all its threads against wall seconds.

`time.process_time` counts user + system time of every thread of the process (inference threads, capture
thread, hub), so 100 % of one core means one core kept busy on average; on a 2-core box 200 % is the most.
"""

from __future__ import annotations

import os
import time
from types import TracebackType


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class CpuMeter:
    """Context manager: wall seconds and process CPU seconds spent while the block runs."""

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self._wall0 = 0.0
        self._cpu0 = 0.0

    def __enter__(self) -> CpuMeter:
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.wall_s = time.perf_counter() - self._wall0
        self.cpu_s = time.process_time() - self._cpu0

    @property
    def pct_one_core(self) -> float:
        """CPU seconds per wall second, as a percentage of one core (200 = two cores busy)."""
        return 100.0 * self.cpu_s / self.wall_s if self.wall_s else 0.0

    def as_dict(self) -> dict[str, float]:
        """Figures for `--json`: seconds, % of one core and % of all usable cores."""
        cores = usable_cores()
        return {"wall_s": round(self.wall_s, 3), "cpu_s": round(self.cpu_s, 3),
                "cpu_pct_one_core": round(self.pct_one_core, 1),
                "cpu_pct_all_cores": round(self.pct_one_core / cores, 1), "cores": cores}
