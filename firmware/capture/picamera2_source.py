"""The Pi camera through picamera2: a full-resolution `main` stream for crops, a `lores` one for detection.

Both streams come from the same request (`capture_arrays(["main", "lores"])`): two separate `capture_array`
calls would return two different frames, and a box found on one would be off on the other for a walking
person. `main` is "RGB888" (B, G, R in memory, what OpenCV wants); `lores` is "YUV420", converted to BGR
here. A detection on `Frame.lores` maps to `Frame.image` with `Detection.scaled(*lores_scale(frame))`.

The Pi 5 front end sometimes stops ("Camera frontend has timed out!") and captures then hang. Each capture
is therefore asked for with `wait=False` and waited on with a timeout; a capture that times out or raises
stops and closes the camera and reopens it with exponential backoff. picamera2 is imported only when no
factory is given, so this module loads anywhere; tests and the demo pass `FakePicamera2`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from firmware.capture.frame import Frame
from firmware.capture.source import Backoff, ReconnectingSource
from firmware.capture.yuv import yuv420_to_bgr
from firmware.config import CameraConfig
from firmware.errors import CameraError

log = logging.getLogger(__name__)

CameraFactory = Callable[[int], Any]


def picamera2_factory(camera_num: int) -> Any:
    """The real `Picamera2(camera_num)`; raises CameraError with the install hint when picamera2 is absent."""
    try:
        from picamera2 import Picamera2
    except ImportError as exc:
        raise CameraError("picamera2 is not installed: on Raspberry Pi OS run `sudo apt install "
                          "python3-picamera2` and create the venv with --system-site-packages") from exc
    return Picamera2(camera_num)


class Picamera2Source(ReconnectingSource):
    """Frames from Pi camera `camera_num`: `Frame.image` is main (BGR), `Frame.lores` is lores (BGR).

    Sizes are (width, height) in pixels; picamera2 may round them for the hardware, and the sizes it chose
    are read back with `stream_configuration`. `read_timeout` (seconds) is how long a capture may take
    before it counts as a hung front end. `max_failures` consecutive failures raise CameraError (None: keep
    trying).
    """

    def __init__(self, camera: str = "cam0", *, camera_num: int = 0,
                 main_size: tuple[int, int] = (1920, 1080), lores_size: tuple[int, int] = (640, 360),
                 fps: float = 15.0, read_timeout: float = 2.0,
                 backoff: Backoff | None = None, max_failures: int | None = None,
                 camera_factory: CameraFactory | None = None) -> None:
        super().__init__(camera, backoff, max_failures)
        self.camera_num = camera_num
        self.main_size = main_size
        self.lores_size = lores_size
        self.fps = fps
        self.read_timeout = read_timeout
        self._factory = camera_factory if camera_factory is not None else picamera2_factory
        self._cam: Any = None
        self._lores_width = lores_size[0]
        self._ever_started = False
        self._wake = threading.Event()

    @classmethod
    def from_config(cls, cfg: CameraConfig, camera_factory: CameraFactory | None = None) -> Picamera2Source:
        return cls(cfg.name, camera_num=cfg.device, main_size=(cfg.main_width, cfg.main_height),
                   lores_size=(cfg.lores_width, cfg.lores_height), fps=cfg.fps or 15.0,
                   read_timeout=cfg.read_timeout_s, backoff=Backoff(0.5, cfg.reconnect_max_s),
                   camera_factory=camera_factory)

    def open(self) -> None:
        """Start the camera; a camera that fails to start is retried by `read` with backoff."""
        self._closed = False
        self._wake.clear()
        self._retry_at = self.clock.monotonic()
        self._start_camera()

    def _start_camera(self) -> bool:
        try:
            cam = self._factory(self.camera_num)
        except CameraError:
            raise
        except (RuntimeError, OSError, IndexError) as exc:
            self._fail(f"could not be opened: {exc}")
            return False
        try:
            duration = int(1e6 / self.fps) if self.fps > 0 else 33333
            config = cam.create_video_configuration(
                main={"size": self.main_size, "format": "RGB888"},
                lores={"size": self.lores_size, "format": "YUV420"},
                controls={"FrameDurationLimits": (duration, duration)}, buffer_count=4)
            cam.configure(config)
            self._lores_width = cam.stream_configuration("lores")["size"][0]
            cam.start()
        except (RuntimeError, OSError) as exc:
            self._cam = cam
            self._fail(f"could not be configured and started: {exc}")
            return False
        self._cam = cam
        if self._ever_started:
            self._reconnects += 1
            log.info("camera %s: Pi camera %d restarted", self.camera, self.camera_num)
        self._ever_started = True
        return True

    def read(self, timeout: float) -> Frame | None:
        """The next (main, lores) pair; None while the camera is being restarted (within `timeout` s)."""
        if self._closed:
            return None
        if self._cam is None and not (self._is_retry_due(timeout, self._wake) and self._start_camera()):
            return None
        try:
            job = self._cam.capture_arrays(["main", "lores"], wait=False)
            (main, lores), _metadata = self._cam.wait(job, timeout=self.read_timeout)
        except TimeoutError:
            self._fail(f"frontend has timed out: no frame within {self.read_timeout:.1f} s")
            return None
        except (RuntimeError, OSError) as exc:
            self._fail(f"capture failed: {exc}")
            return None
        self._delivered()
        return self._frame(main[:, :, :3], yuv420_to_bgr(lores, self._lores_width))

    def _fail(self, what: str) -> None:
        self._shutdown_camera()
        self._schedule_retry(CameraError(f"camera {self.camera}: Pi camera {self.camera_num} {what}"),
                             "restarting it")

    def _shutdown_camera(self) -> None:
        """stop() then close(), each tolerated to fail: the camera may be the thing that broke."""
        cam, self._cam = self._cam, None
        if cam is None:
            return
        for step in (cam.stop, cam.close):
            try:
                step()
            except (RuntimeError, OSError) as exc:
                log.warning("camera %s: %s() failed while restarting: %s", self.camera, step.__name__, exc)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._shutdown_camera()
