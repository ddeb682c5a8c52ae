"""The one-frame slot: the camera never waits, the pipeline gets the newest frame, drops are counted."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from firmware.capture.frame import Frame
from firmware.capture.source import Backoff, CaptureThread, LatestFrame, SourceBase, SourceStats


def frame(i: int) -> Frame:
    return Frame("t", i, np.zeros((4, 4, 3), np.uint8), time.monotonic(), time.time())


class CountingSource(SourceBase):
    """Yields `n` tiny frames as fast as it can, then is exhausted: a camera much faster than the pipeline."""

    def __init__(self, n: int) -> None:
        super().__init__("fast")
        self.n = n
        self.opened = self.closed_calls = 0

    def open(self) -> None:
        self.opened += 1

    def read(self, timeout: float) -> Frame | None:
        if self._frames >= self.n:
            self._exhausted = True
            return None
        return self._frame(np.zeros((4, 4, 3), np.uint8))

    def close(self) -> None:
        self.closed_calls += 1


def test_newest_frame_wins_and_replaced_frames_are_counted() -> None:
    slot = LatestFrame()
    for i in range(5):
        slot.put(frame(i))
    got = slot.wait_for_frame(0.1)
    assert got is not None and got.index == 4
    assert slot.dropped == 4 and slot.delivered == 1
    assert slot.wait_for_frame(0.01) is None  # taken: the slot is empty again


def test_wait_times_out_and_close_wakes_the_consumer() -> None:
    slot = LatestFrame()
    t0 = time.monotonic()
    assert slot.wait_for_frame(0.05) is None
    assert time.monotonic() - t0 >= 0.045
    threading.Timer(0.05, slot.close).start()
    t0 = time.monotonic()
    assert slot.wait_for_frame(5.0) is None
    assert time.monotonic() - t0 < 1.0 and slot.is_closed


def test_fast_producer_slow_consumer_drops_but_never_blocks() -> None:
    source = CountingSource(3000)
    capture = CaptureThread(source, poll=0.05)
    seen: list[int] = []
    t0 = time.monotonic()
    with capture:
        while True:
            got = capture.slot.wait_for_frame(1.0)
            if got is None:
                break
            seen.append(got.index)
            time.sleep(0.002)  # a pipeline slower than the camera
    elapsed = time.monotonic() - t0
    slot = capture.slot
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert seen[-1] == 2999  # the last frame made is the last one seen: newest wins
    assert slot.delivered == len(seen)
    assert slot.delivered + slot.dropped == 3000
    assert slot.dropped > 1000  # the producer ran ahead instead of waiting for the consumer
    assert elapsed < 10
    assert source.opened == 1 and source.closed_calls == 1 and capture.error is None


def test_capture_thread_stops_on_its_event_and_closes_the_source() -> None:
    source = CountingSource(10**9)
    stop = threading.Event()
    capture = CaptureThread(source, stop=stop, poll=0.05).start()
    assert capture.slot.wait_for_frame(2.0) is not None
    stop.set()
    capture.stop(timeout=2.0)
    capture.stop(timeout=2.0)
    assert not capture.is_alive and source.closed_calls == 1 and capture.slot.is_closed
    assert source.stats.frames > 0 and source.stats == SourceStats(source.stats.frames, 0, 0)


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    b = Backoff(0.5, 3.0)
    assert [b.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    b.reset()
    assert b.next_delay() == 0.5
    with pytest.raises(ValueError, match="initial"):
        Backoff(0.0, 1.0)
