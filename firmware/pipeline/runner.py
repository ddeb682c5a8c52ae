"""The loops around the pipeline: a camera worker (capture thread → pipeline) and the hub's receive loop.

Both loop on a stop Event with short timeouts (SIGTERM sets it) and ping the systemd watchdog every
iteration. A camera scans only while a watchlist is loaded for an open deployment; otherwise it drops its
frames unprocessed (counted as idle) and sends no preview.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from firmware.capture.registry import make_source
from firmware.capture.source import CaptureThread, FrameSource
from firmware.config import AppConfig, CameraConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import ConfigError, LfrError
from firmware.hardware.clock import Clock, SystemClock
from firmware.match.score import ScoreCalibration, load_calibration
from firmware.pipeline.camera import CameraPipeline
from firmware.pipeline.channel import HubReceiver, HubSender
from firmware.pipeline.hub import Hub
from firmware.pipeline.messages import CameraMessage
from firmware.pipeline.watchlist_watch import WatchlistWatcher
from firmware.store.db import open_config_db

log = logging.getLogger(__name__)

WAIT_S = 0.25


class Watchdog(Protocol):
    """What the loops need of `firmware.hardware.watchdog.SystemdNotifier`."""

    def ping(self) -> None: ...

    def status(self, text: str) -> None: ...


class HubLoopServices(Protocol):
    """What the hub loop needs of `firmware.pipeline.services.HubServices`."""

    def observe(self, msg: CameraMessage) -> None: ...

    def tick(self) -> None: ...


class NoWatchdog:
    """No systemd (threads of the development mode, tests)."""

    def ping(self) -> None:
        """Nothing to ping."""

    def status(self, text: str) -> None:
        """Nothing to report to."""


def calibration_for(cfg: AppConfig) -> ScoreCalibration:
    """The score calibration beside the models (`models/calibration.toml`)."""
    return load_calibration(Path(cfg.models.dir))


def camera_config(cfg: AppConfig, name: str) -> CameraConfig:
    """The `[[cameras]]` entry called `name`; ConfigError listing the names otherwise."""
    for cam in cfg.cameras:
        if cam.name == name:
            return cam
    raise ConfigError(f"no camera named {name!r} in the configuration; cameras: "
                      f"{', '.join(c.name for c in cfg.cameras)}")


@dataclass
class CameraSummary:
    """What a camera worker did: frames processed, dropped at the slot and idle (not scanning), fps."""

    camera: str
    frames: int = 0
    dropped: int = 0
    idle: int = 0
    alerts_sent: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CameraWorker:
    """Runs one camera until `stop` is set, the source ends, or `max_frames` frames were processed."""

    def __init__(self, cfg: AppConfig, camera: CameraConfig, recognizer: Recognizer, sender: HubSender,
                 calibration: ScoreCalibration, stop: threading.Event, *, source: FrameSource | None = None,
                 max_frames: int | None = None, watchdog: Watchdog | None = None,
                 is_paused: Callable[[], bool] | None = None, clock: Clock | None = None) -> None:
        self.cfg = cfg
        self.camera = camera
        self.recognizer = recognizer
        self.sender = sender
        self.calibration = calibration
        self.stop = stop
        self.source = source
        self.max_frames = max_frames
        self.watchdog = watchdog or NoWatchdog()
        self.is_paused = is_paused or (lambda: False)  # the stop button: frames are dropped unscanned
        self.clock = clock or SystemClock()
        self.pipeline = CameraPipeline(camera.name, recognizer, cfg, sender, clock=self.clock)
        self.summary = CameraSummary(camera.name)
        self.watcher: WatchlistWatcher | None = None

    def run(self) -> CameraSummary:
        db = open_config_db(self.cfg)
        watcher = WatchlistWatcher(db, self.calibration, poll_s=self.cfg.pipeline.watchlist_poll_s,
                                   clock=self.clock, models=self.recognizer.model_files())
        self.watcher = watcher
        capture = CaptureThread(self.source or make_source(self.camera), poll=WAIT_S).start()
        flush_every = self.cfg.pipeline.stats_flush_s / 2
        next_flush = self.clock.monotonic() + flush_every
        dropped_seen = 0
        started = self.clock.monotonic()
        try:
            while not self.stop.is_set():
                self.pipeline.set_watchlist(watcher.current())
                frame = capture.slot.wait_for_frame(WAIT_S)
                self.watchdog.ping()
                if frame is None:
                    if capture.slot.is_closed:
                        break
                    continue
                if not self.pipeline.is_scanning or self.is_paused():
                    self.summary.idle += 1
                else:
                    self.pipeline.process(frame)
                    self.summary.frames += 1
                now = self.clock.monotonic()
                if now >= next_flush:
                    next_flush = now + flush_every
                    dropped_seen = self._flush(capture, dropped_seen)
                if self.max_frames is not None and self.summary.frames >= self.max_frames:
                    break
        finally:
            capture.stop()
            self._flush(capture, dropped_seen)
            db.close()
        if capture.error is not None:
            self.summary.error = str(capture.error)
            raise capture.error
        self.summary.seconds = self.clock.monotonic() - started
        self.summary.fps = self.summary.frames / self.summary.seconds if self.summary.seconds else 0.0
        self.summary.dropped = capture.slot.dropped
        self.summary.alerts_sent = self.pipeline.alerts_sent
        self.summary.counters = dict(self.pipeline.totals)
        self.summary.timings = self.pipeline.total_timings.summary()
        return self.summary

    def _flush(self, capture: CaptureThread, dropped_seen: int) -> int:
        dropped = capture.slot.dropped
        delta = self.pipeline.flush_stats(dropped - dropped_seen if self.pipeline.is_scanning else 0)
        frames = delta.timings.get("frame", [0.0, 0.0, 0.0])
        refused = self.watcher.refused if self.watcher is not None else ""
        if refused:
            self.watchdog.status(f"camera {self.camera.name}: {refused}")
        elif not delta.scanning:
            self.watchdog.status(f"camera {self.camera.name}: not scanning (no active watchlist)")
        elif frames[0]:
            self.watchdog.status(f"camera {self.camera.name}: scanning, {frames[1] / frames[0]:.0f} ms a frame, "
                                 f"{delta.counters['dropped_frames']} dropped since last report")
        return dropped


def run_hub(hub: Hub, receiver: HubReceiver, stop: threading.Event, *, watchdog: Watchdog | None = None,
            until: Callable[[], bool] | None = None, services: HubLoopServices | None = None) -> None:
    """Receive and handle camera messages until `stop` is set (or `until()` is true and nothing is queued).

    `services` (the link, lights and health of `firmware.pipeline.services`) sees every message and ticks
    once a turn.
    """
    watchdog = watchdog or NoWatchdog()
    while not stop.is_set():
        msg = receiver.receive(WAIT_S)
        watchdog.ping()
        if services is not None:
            try:
                services.tick()
            except LfrError as exc:
                log.error("appliance services: %s", exc)
        if msg is not None:
            hub.handle(msg)
            if services is not None:
                services.observe(msg)
        elif until is not None and until():
            break
        try:
            hub.tick()
        except LfrError as exc:
            log.error("hub: %s", exc)
    while (msg := receiver.receive(0.0)) is not None:  # what the cameras sent before they stopped
        hub.handle(msg)
    hub.close()
