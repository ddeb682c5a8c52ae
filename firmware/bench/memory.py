"""Resident memory of this process: the lifetime peak from the kernel, and the peak over a block of code.

`peak_rss_bytes` is the kernel's high-water mark (`getrusage` ru_maxrss, kibibytes on Linux), which covers
every allocation including native ones (TFLite arenas, OpenCV buffers) but never goes down. `RssSampler`
polls the current RSS with psutil on a background thread to find the peak of one block (e.g. the pipeline on
the 1080p scene) and how much it grew above the RSS at entry. `run_sampled` polls another process from
outside (the appliance-like child of `lfr bench pipeline`), which sees everything the child maps.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import psutil

MIB = 1024 * 1024


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


def run_sampled(cmd: Sequence[str], *, interval_s: float = 0.02,
                timeout_s: float = 3600.0) -> tuple[int, int, str, str]:
    """Run `cmd` as a child process and poll its RSS from outside every `interval_s` seconds until it exits:
    (exit code, peak RSS bytes seen, stdout, stderr). The child is killed after `timeout_s` seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err)
        child = psutil.Process(proc.pid)
        deadline = time.monotonic() + timeout_s
        peak = 0
        try:
            while proc.poll() is None:
                try:
                    peak = max(peak, int(child.memory_info().rss))
                except psutil.NoSuchProcess:  # exited between poll() and the sample (a zombie counts too)
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{cmd[0]} still running after {timeout_s:.0f} s")
                time.sleep(interval_s)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        out.seek(0)
        err.seek(0)
        return proc.returncode, peak, out.read().decode(errors="replace"), err.read().decode(errors="replace")
