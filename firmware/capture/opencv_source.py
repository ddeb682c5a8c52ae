"""USB cameras, RTSP streams and video files through OpenCV's VideoCapture, reconnecting when a stream drops.

A live stream that fails to open or stops delivering frames is released and reopened with exponential
backoff; each failure is logged as a CameraError with the camera name and (credential-free) address, and the
capture thread keeps running. A video file ends, or starts again when `loop` is set.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from firmware.capture.frame import Frame
from firmware.capture.source import Backoff, ReconnectingSource
from firmware.config import CameraConfig
from firmware.errors import CameraError, DataError

log = logging.getLogger(__name__)


class VideoCaptureLike(Protocol):
    """The part of cv2.VideoCapture this adapter uses; tests pass a stand-in that fails on purpose."""

    def isOpened(self) -> bool: ...  # noqa: N802 (OpenCV's name)

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def release(self) -> None: ...


def redact(target: str | int) -> str:
    """The address fit for a log line: USB index, file path, or URL with any user:password removed."""
    return re.sub(r"//[^/@]*@", "//***@", str(target)) if isinstance(target, str) else f"USB device {target}"


def open_video_capture(target: str | int, timeout_s: float = 5.0) -> VideoCaptureLike:
    """cv2.VideoCapture on a device index, file or URL; network streams get open/read timeouts in ms."""
    if isinstance(target, str) and "://" in target:
        ms = int(timeout_s * 1000)
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    return cv2.VideoCapture(target)


class OpenCVSource(ReconnectingSource):
    """Frames from a USB device index, an RTSP/HTTP URL or a video file.

    `max_failures` consecutive failed attempts make `read` raise CameraError (None: keep trying for ever,
    the right choice on the van where the camera may come back). `capture_factory` opens the capture.
    """

    def __init__(self, target: str | int, camera: str = "cam0", *, loop: bool = False,
                 backoff: Backoff | None = None, max_failures: int | None = None,
                 capture_factory: Callable[[str | int], VideoCaptureLike] = open_video_capture) -> None:
        super().__init__(camera, backoff, max_failures)
        self.target = target
        self.loop = loop
        self.is_file = isinstance(target, str) and "://" not in target
        self._factory = capture_factory
        self._cap: VideoCaptureLike | None = None
        self._ever_connected = False
        self._wake = threading.Event()

    @classmethod
    def from_config(cls, cfg: CameraConfig) -> OpenCVSource:
        target: str | int = cfg.uri if cfg.uri else cfg.device
        timeout = cfg.read_timeout_s
        return cls(target, camera=cfg.name, loop=cfg.loop, backoff=Backoff(0.5, cfg.reconnect_max_s),
                   capture_factory=lambda t: open_video_capture(t, timeout))

    def open(self) -> None:
        """First connection attempt; a live source that is not there yet is retried by `read`, not raised."""
        if self.is_file and not Path(str(self.target)).is_file():
            raise DataError(f"camera {self.camera}: video file {self.target} does not exist")
        self._closed = False
        self._wake.clear()
        self._retry_at = self.clock.monotonic()
        self._connect()

    def read(self, timeout: float) -> Frame | None:
        """The next frame; None while reconnecting (within `timeout` s) or after the end of a file."""
        if self._exhausted or self._closed:
            return None
        if self._cap is None and not (self._is_retry_due(timeout, self._wake) and self._connect()):
            return None
        assert self._cap is not None
        ok, image = self._cap.read()
        if ok and image is not None:
            self._delivered()
            return self._frame(image)
        if self.is_file:
            return self._end_of_file()
        self._fail(f"stopped delivering frames after {self._frames} frames")
        return None

    def _end_of_file(self) -> Frame | None:
        if not self.loop or self._frames == 0:
            self._exhausted = True
            return None
        self._release()
        self._cap = self._factory(self.target)
        ok, image = self._cap.read()
        if not (ok and image is not None):
            self._exhausted = True
            return None
        return self._frame(image)

    def _connect(self) -> bool:
        """One attempt to open the capture; on failure schedule the next one (and maybe give up)."""
        cap = self._factory(self.target)
        if not cap.isOpened():
            cap.release()
            if self.is_file:  # a file that OpenCV cannot read will not get better by waiting
                raise DataError(f"camera {self.camera}: video file {self.target} cannot be read by OpenCV")
            self._fail("could not be opened")
            return False
        self._cap = cap
        if self._ever_connected:
            self._reconnects += 1
            log.info("camera %s: %s reconnected", self.camera, redact(self.target))
        self._ever_connected = True
        return True

    def _fail(self, what: str) -> None:
        self._release()
        self._schedule_retry(CameraError(f"camera {self.camera}: {redact(self.target)} {what}"), "retrying")

    def _release(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._release()
