"""Resident memory of this process: the lifetime peak from the kernel, and the peak over a block of code.

`peak_rss_bytes` is the kernel's high-water mark (`getrusage` ru_maxrss, kibibytes on Linux), which covers
every allocation including native ones (TFLite arenas, OpenCV buffers) but never goes down. `RssSampler`
polls the current RSS with psutil on a background thread to find the peak of one block (e.g. the pipeline on
the 1080p scene) and how much it grew above the RSS at entry.
"""

from __future__ import annotations

import resource
import sys
import threading
from types import TracebackType

import psutil

MIB = 1024 * 1024


def current_rss_bytes() -> int:
    """RSS of this process now, in bytes."""
    return int(psutil.Process().memory_info().rss)


def peak_rss_bytes() -> int:
    """Highest RSS this process has reached since it started, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


class RssSampler:
    """Context manager: peak RSS while the block runs, sampled every `interval_s` seconds.

    A sample is taken at entry and at exit too, so a block shorter than the interval is still measured; a
    peak between two samples can be missed, which is why the kernel's `peak_rss_bytes` is reported beside it.
    """

    def __init__(self, interval_s: float = 0.005) -> None:
        self.interval_s = interval_s
        self.start_bytes = 0
        self.peak_bytes = 0
        self._proc = psutil.Process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, int(self._proc.memory_info().rss))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def __enter__(self) -> RssSampler:
        self.start_bytes = int(self._proc.memory_info().rss)
        self.peak_bytes = self.start_bytes
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None
        self._sample()

    @property
    def growth_bytes(self) -> int:
        """How far the peak rose above the RSS at entry, in bytes."""
        return self.peak_bytes - self.start_bytes

    def as_dict(self) -> dict[str, float]:
        """Figures in MiB for `--json` output."""
        return {"rss_start_mib": self.start_bytes / MIB, "rss_peak_mib": self.peak_bytes / MIB,
                "rss_growth_mib": self.growth_bytes / MIB, "process_peak_rss_mib": peak_rss_bytes() / MIB}
