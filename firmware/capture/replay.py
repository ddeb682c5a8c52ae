"""Replay a folder of images or a video file as if it were a live camera, for tests, demos and benchmarks.

Frames are paced by the monotonic clock at `fps` (frame k is due at start + k/fps), so a slow pipeline drops
frames at the `LatestFrame` slot exactly as it would with a real camera. `fps=0` replays as fast as the
frames decode, for benchmarks. Short delays (a busy CPU) are caught up so the long-run rate stays exact; after
a stall of more than `MAX_LAG_S` the schedule restarts from now rather than bursting out the backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from firmware.capture.frame import Frame
from firmware.capture.source import SourceBase
from firmware.config import CameraConfig
from firmware.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
MAX_LAG_S = 0.5


class ReplaySource(SourceBase):
    """Frames from `path` (an image folder, in name order, or a video file) at `fps` frames per second."""

    def __init__(self, path: str | Path, camera: str = "replay", fps: float = 15.0,
                 loop: bool = False) -> None:
        super().__init__(camera)
        if fps < 0:
            raise ValueError(f"fps must be >= 0 (0 = unpaced), got {fps}")
        self.path = Path(path)
        self.fps = fps
        self.loop = loop
        self._images: list[Path] = []
        self._position = 0
        self._video: cv2.VideoCapture | None = None
        self._due: float | None = None  # when the next frame is due; set by the first read
        self._wake = threading.Event()

    @classmethod
    def from_config(cls, cfg: CameraConfig) -> ReplaySource:
        return cls(cfg.path, camera=cfg.name, fps=cfg.fps, loop=cfg.loop)

    def open(self) -> None:
        """Check the folder or video is there and readable; raises DataError naming the path otherwise."""
        if self.path.is_dir():
            self._images = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._images:
                kinds = ", ".join(sorted(IMAGE_SUFFIXES))
                raise DataError(f"replay folder {self.path} holds no images ({kinds})")
        elif self.path.is_file():
            self._video = cv2.VideoCapture(str(self.path))
            if not self._video.isOpened():
                raise DataError(f"replay video {self.path} cannot be opened by OpenCV")
        else:
            raise DataError(f"replay path {self.path} does not exist")
        self._closed = False
        self._wake.clear()
        self._due = None

    def read(self, timeout: float) -> Frame | None:
        """The next frame once it is due; None if it is not due within `timeout` s or the replay has ended."""
        if self._exhausted or self._closed:
            return None
        if self.fps > 0:
            if self._due is None:
                self._due = time.monotonic()
            wait = self._due - time.monotonic()
            if wait > timeout:
                self._wake.wait(timeout)
                return None
            if wait > 0:
                self._wake.wait(wait)
        image = self._next_image()
        if image is None:
            self._exhausted = True
            return None
        if self._due is not None:
            self._due += 1.0 / self.fps
            now = time.monotonic()
            if now - self._due > MAX_LAG_S:
                self._due = now
        return self._frame(image)

    def _next_image(self) -> np.ndarray | None:
        for _attempt in range(2):
            image = self._read_video() if self._video is not None else self._read_folder()
            if image is not None:
                return image
            if not self.loop or self._frames == 0:
                return None
            self._rewind()
        return None

    def _read_folder(self) -> np.ndarray | None:
        while self._position < len(self._images):
            path = self._images[self._position]
            self._position += 1
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is not None:
                return image
            log.warning("replay %s: skipping %s, not a readable image", self.camera, path)
        return None

    def _read_video(self) -> np.ndarray | None:
        assert self._video is not None
        ok, image = self._video.read()
        return image if ok else None

    def _rewind(self) -> None:
        self._position = 0
        if self._video is not None:
            self._video.release()
            self._video = cv2.VideoCapture(str(self.path))

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._video is not None:
            self._video.release()
            self._video = None
