"""The frame source contract, the one-frame slot between camera and pipeline, and the capture thread.

The camera never waits for the pipeline: a `CaptureThread` pulls frames from a `FrameSource` as fast as the
source delivers them and drops each into a `LatestFrame` slot that holds at most one frame. When the pipeline
is slower than the camera the older frame is replaced (and counted as dropped), so the pipeline always works
on the newest frame and latency never grows.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np

from firmware.capture.frame import Frame
from firmware.errors import CameraError, LfrError
from firmware.hardware.clock import Clock, SystemClock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceStats:
    """Counters of one source since it was made: frames delivered, reconnections and failed attempts."""

    frames: int = 0
    reconnects: int = 0
    failures: int = 0


@runtime_checkable
class FrameSource(Protocol):
    """A camera, stream or file that yields frames; adapters live in `firmware.capture.registry.SOURCES`.

    `read(timeout)` returns the next frame, or None when none arrived within `timeout` seconds (the source
    may be reconnecting) or the source is `exhausted` (a file that does not loop reached its end).
    Failures the source can recover from are retried inside it with backoff; `read` raises CameraError only
    when it gives up. `close()` is safe to call twice.
    """

    camera: str

    def open(self) -> None: ...

    def read(self, timeout: float) -> Frame | None: ...

    def close(self) -> None: ...

    @property
    def exhausted(self) -> bool: ...

    @property
    def stats(self) -> SourceStats: ...


class SourceBase:
    """Shared bookkeeping of the adapters: counters, frame numbering, `closed`, and `with` support."""

    def __init__(self, camera: str, clock: Clock | None = None) -> None:
        self.camera = camera
        self.clock = clock or SystemClock()  # frame stamps and reconnect times
        self._frames = 0
        self._reconnects = 0
        self._failures = 0
        self._closed = False
        self._exhausted = False

    @property
    def stats(self) -> SourceStats:
        return SourceStats(self._frames, self._reconnects, self._failures)

    @property
    def exhausted(self) -> bool:
        return self._exhausted

    @property
    def closed(self) -> bool:
        return self._closed

    def _frame(self, image: np.ndarray, lores: np.ndarray | None = None) -> Frame:
        """Wrap pixels into the next numbered Frame stamped with the monotonic and wall clocks now."""
        frame = Frame(self.camera, self._frames, image, self.clock.monotonic(), self.clock.time(), lores)
        self._frames += 1
        return frame

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> SourceBase:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Backoff:
    """Exponential backoff: `initial` s, doubling on each failure up to `maximum`; `reset()` on success."""

    def __init__(self, initial: float = 0.5, maximum: float = 30.0, factor: float = 2.0) -> None:
        if initial <= 0 or maximum < initial or factor < 1:
            raise ValueError(f"backoff needs 0 < initial <= maximum and factor >= 1, got initial={initial}, "
                             f"maximum={maximum}, factor={factor}")
        self.initial, self.maximum, self.factor = initial, maximum, factor
        self._next = initial

    def next_delay(self) -> float:
        """The wait before the next attempt, in seconds; each call lengthens the following one."""
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return delay

    def reset(self) -> None:
        self._next = self.initial


class ReconnectingSource(SourceBase):
    """A source that reopens its device with exponential backoff after a failure (OpenCV, picamera2).

    `max_failures` consecutive failed attempts make the next failure raise CameraError (None: keep trying
    for ever, the right choice on the van, where the camera may come back).
    """

    def __init__(self, camera: str, backoff: Backoff | None, max_failures: int | None) -> None:
        super().__init__(camera)
        self.backoff = backoff if backoff is not None else Backoff()
        self.max_failures = max_failures
        self._retry_at = 0.0
        self._streak = 0

    def _schedule_retry(self, error: CameraError, action: str) -> None:
        """Count a failed attempt, log it and set when to try again; raise after too many in a row."""
        self._failures += 1
        self._streak += 1
        if self.max_failures is not None and self._streak > self.max_failures:
            raise CameraError(f"{error}; giving up after {self._streak} failed attempts in a row")
        delay = self.backoff.next_delay()
        self._retry_at = self.clock.monotonic() + delay
        log.warning("%s; %s in %.1f s (attempt %d)", error, action, delay, self._streak)

    def _is_retry_due(self, timeout: float, wake: threading.Event) -> bool:
        """Wait (at most `timeout` s, cut short by `wake` being set, e.g. by close()) until the scheduled retry;
        True when it is time to reopen the device now."""
        wait = self._retry_at - self.clock.monotonic()
        if wait > timeout:
            wake.wait(timeout)
            return False
        return not (wait > 0 and wake.wait(wait))

    def _delivered(self) -> None:
        """A frame came: the failure streak and the backoff start again from the beginning."""
        self._streak = 0
        self.backoff.reset()


class LatestFrame:
    """A slot that holds at most one frame: the producer never blocks, the newest frame wins.

    `put` replaces a frame the consumer has not taken yet and counts it in `dropped`. `wait_for_frame` hands
    the consumer the newest frame, waiting up to `timeout` seconds. `close()` wakes a waiting consumer; after
    it, `wait_for_frame` returns what is left, then None.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._closed = False
        self.dropped = 0
        self.delivered = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify()

    def wait_for_frame(self, timeout: float) -> Frame | None:
        """The newest frame; None if none came within `timeout` seconds, or the slot is closed and empty."""
        with self._cond:
            if self._frame is None and not self._closed:
                self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout)
            frame, self._frame = self._frame, None
            if frame is not None:
                self.delivered += 1
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def is_closed(self) -> bool:
        return self._closed


class CaptureThread:
    """Pulls frames from `source` into `slot` until `stop` is set or the source is exhausted or gives up.

    The thread owns the source: it opens it, reads with short timeouts (so `stop` is noticed within about
    `poll` seconds) and closes it. When it ends for any reason it closes the slot, so the consumer's
    `wait_for_frame` returns None instead of waiting forever; `error` then holds the LfrError (CameraError,
    DataError) that made the source give up or fail to open.
    """

    def __init__(self, source: FrameSource, slot: LatestFrame | None = None,
                 stop: threading.Event | None = None, poll: float = 0.5) -> None:
        self.source = source
        self.slot = slot if slot is not None else LatestFrame()
        self.stop_event = stop if stop is not None else threading.Event()
        self.poll = poll
        self.error: LfrError | None = None
        self._thread = threading.Thread(target=self._run, name=f"capture-{source.camera}", daemon=True)

    def start(self) -> CaptureThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to finish and wait up to `timeout` seconds for it; safe to call twice."""
        self.stop_event.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("capture thread of camera %s did not stop within %.1f s", self.source.camera,
                            timeout)

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self.source.open()
            while not self.stop_event.is_set():
                frame = self.source.read(self.poll)
                if frame is not None:
                    self.slot.put(frame)
                elif self.source.exhausted:
                    log.info("camera %s: source ended after %d frames", self.source.camera,
                             self.source.stats.frames)
                    break
        except LfrError as exc:
            self.error = exc
            log.error("camera %s: capture stopped: %s", self.source.camera, exc)
        finally:
            self.source.close()
            self.slot.close()

    def __enter__(self) -> CaptureThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
