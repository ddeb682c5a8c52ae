"""`FakePicamera2`: a stand-in for picamera2's `Picamera2`, fed by images or a video, for tests and the demo.

It follows the documented picamera2 API the adapter uses: `create_video_configuration(main=, lores=,
controls=, buffer_count=)` returning the same dict shape, `configure`, `start`, `capture_array(name)`,
`capture_arrays(names)`, `capture_buffer(name)`, `capture_metadata`, `wait(job, timeout)` for
`wait=False` jobs, `stream_configuration(name)`, `camera_configuration()`, `stop`, `close`. Arrays have the
real shapes and dtypes: "RGB888" is H×W×3 uint8 in B, G, R memory order; "YUV420" is (H*3/2, stride) uint8
with the stride padded to 64 bytes as on the Pi (see `firmware.capture.yuv`).

It can misbehave like a real camera: `stall_after=N` makes every capture after N frames hang (the Pi 5's
"Camera frontend has timed out!"), `fail_after=N` makes them raise RuntimeError.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from firmware.capture.replay import ReplaySource
from firmware.capture.yuv import bgr_to_yuv420

RGB_FORMATS = ("RGB888", "BGR888", "XRGB8888", "XBGR8888")
YUV_FORMATS = ("YUV420",)


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


class FakeJob:
    """What picamera2 returns for `wait=False`; `get_result(timeout)` raises TimeoutError if late."""

    def __init__(self, camera: FakePicamera2, names: Sequence[str], arrays: bool, single: bool) -> None:
        self._camera, self._names, self._arrays, self._single = camera, list(names), arrays, single
        self._result: Any = None
        self._done = False

    def get_result(self, timeout: float | None = None) -> Any:
        if not self._done:
            self._result = self._camera._complete(self._names, self._arrays, self._single, timeout)
            self._done = True
        return self._result


class FakePicamera2:
    """A camera that replays `frames` (an image folder, a video file, or BGR arrays) at `fps`, looping.

    Only the constructor's keyword arguments are fake-specific; everything else mirrors picamera2.
    """

    def __init__(self, camera_num: int = 0, *, frames: str | Path | Sequence[np.ndarray],
                 fps: float = 30.0, stall_after: int | None = None, fail_after: int | None = None,
                 sensor_size: tuple[int, int] = (2304, 1296)) -> None:
        self.camera_num = camera_num
        self.camera_properties = {"Model": "fake", "PixelArraySize": sensor_size, "Location": 2}
        self.camera_config: dict[str, Any] | None = None
        self.started = False
        self.closed = False
        self.frames_captured = 0
        self.stall_after = stall_after
        self.fail_after = fail_after
        self._fps = fps
        self._due = 0.0
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._arrays: list[np.ndarray] = []
        self._replay: ReplaySource | None = None
        if isinstance(frames, (str, Path)):
            self._replay = ReplaySource(frames, camera=f"fake{camera_num}", fps=0, loop=True)
            self._replay.open()
        else:
            self._arrays = list(frames)
            if not self._arrays:
                raise ValueError("FakePicamera2 needs at least one frame")

    @classmethod
    def factory(cls, frames: str | Path | Sequence[np.ndarray],
                **options: Any) -> Callable[[int], FakePicamera2]:
        """A `camera_factory` for `Picamera2Source` (and `make_source`) making fakes that replay `frames`."""
        return lambda camera_num: cls(camera_num, frames=frames, **options)

    # configuration -----------------------------------------------------------------------------------------

    def create_video_configuration(self, main: dict[str, Any] | None = None,
                                   lores: dict[str, Any] | None = None, raw: dict[str, Any] | None = None,
                                   transform: Any = None, colour_space: Any = None, buffer_count: int = 6,
                                   controls: dict[str, Any] | None = None, display: str | None = "main",
                                   encode: str | None = "main", queue: bool = True) -> dict[str, Any]:
        """The same dict picamera2 builds: streams filled in with defaults, "YUV420" lores at main size."""
        main = {"format": "XBGR8888", "size": (1280, 720)} | dict(main or {})
        if lores is not None:
            lores = {"format": "YUV420", "size": main["size"]} | dict(lores)
        controls = {"NoiseReductionMode": 1, "FrameDurationLimits": (33333, 33333)} | dict(controls or {})
        return {"use_case": "video", "transform": transform, "colour_space": colour_space or "sYCC",
                "buffer_count": buffer_count, "queue": queue, "main": main, "lores": lores, "raw": raw,
                "controls": controls, "sensor": {}, "display": display, "encode": encode}

    def configure(self, camera_config: dict[str, Any]) -> None:
        if self.closed:
            raise RuntimeError("Camera is closed")
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        config = dict(camera_config)
        for name in ("main", "lores"):
            stream = config.get(name)
            if stream is None:
                continue
            stream = dict(stream)
            fmt, (w, h) = stream["format"], stream["size"]
            if fmt in YUV_FORMATS:
                if w % 2 or h % 2:
                    raise RuntimeError(f"{name} stream: YUV420 needs even sizes, got {w}x{h}")
                stream["stride"] = _align(w, 64)
                stream["framesize"] = stream["stride"] * h * 3 // 2
            elif fmt in RGB_FORMATS:
                stream["stride"] = _align(w * (3 if fmt in ("RGB888", "BGR888") else 4), 64)
                stream["framesize"] = stream["stride"] * h
            else:
                raise RuntimeError(f"Format {fmt} not supported by the fake camera")
            config[name] = stream
        if config.get("lores") is not None:
            (mw, mh), (lw, lh) = config["main"]["size"], config["lores"]["size"]
            if lw > mw or lh > mh:
                raise RuntimeError("lores stream dimensions may not exceed main stream")
        duration = config.get("controls", {}).get("FrameDurationLimits")
        if duration:
            self._fps = 1e6 / duration[0]
        self.camera_config = config

    def camera_configuration(self) -> dict[str, Any] | None:
        return self.camera_config

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        if self.camera_config is None or self.camera_config.get(name) is None:
            raise RuntimeError(f"Stream {name!r} is not configured")
        return dict(self.camera_config[name])

    # lifecycle ---------------------------------------------------------------------------------------------

    def start(self, config: dict[str, Any] | None = None, show_preview: bool = False) -> None:
        if config is not None:
            self.configure(config)
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        if self.closed:
            raise RuntimeError("Camera is closed")
        self.started = True
        self._due = time.monotonic()

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        if self.closed:
            return
        self.stop()
        self.closed = True
        self._closing.set()
        if self._replay is not None:
            self._replay.close()

    def __enter__(self) -> FakePicamera2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # capture -----------------------------------------------------------------------------------------------

    def capture_array(self, name: str = "main", wait: bool | None = None, signal_function: Any = None) -> Any:
        return self._dispatch([name], arrays=True, single=True, wait=wait)

    def capture_arrays(self, names: Sequence[str] = ("main",), wait: bool | None = None,
                       signal_function: Any = None) -> Any:
        return self._dispatch(names, arrays=True, single=False, wait=wait)

    def capture_buffer(self, name: str = "main", wait: bool | None = None,
                       signal_function: Any = None) -> Any:
        return self._dispatch([name], arrays=False, single=True, wait=wait)

    def capture_buffers(self, names: Sequence[str] = ("main",), wait: bool | None = None,
                        signal_function: Any = None) -> Any:
        return self._dispatch(names, arrays=False, single=False, wait=wait)

    def capture_metadata(self, wait: bool | None = None, signal_function: Any = None) -> dict[str, Any]:
        return {"SensorTimestamp": time.monotonic_ns(), "FrameDuration": int(1e6 / self._fps)}

    def wait(self, job: FakeJob, timeout: float | None = None) -> Any:
        return job.get_result(timeout=timeout)

    def _dispatch(self, names: Sequence[str], arrays: bool, single: bool, wait: bool | None) -> Any:
        if not self.started:
            raise RuntimeError("Camera is not started")
        for name in names:
            self.stream_configuration(name)
        job = FakeJob(self, names, arrays, single)
        return job if wait is False else job.get_result()

    def _complete(self, names: Sequence[str], arrays: bool, single: bool, timeout: float | None) -> Any:
        """Wait for the next frame like the camera would, then render the requested streams from it."""
        with self._lock:
            if self.stall_after is not None and self.frames_captured >= self.stall_after:
                self._closing.wait(timeout)
                raise TimeoutError("fake camera: frontend has timed out, no frame arrived")
            if self.fail_after is not None and self.frames_captured >= self.fail_after:
                raise RuntimeError("fake camera: capture failed (simulated)")
            wait = self._due - time.monotonic()
            if timeout is not None and wait > timeout:
                self._closing.wait(timeout)
                raise TimeoutError("fake camera: no frame within the timeout")
            if wait > 0:
                self._closing.wait(wait)
            self._due = max(self._due + 1.0 / self._fps, time.monotonic() - 1.0 / self._fps)
            source = self._next_source()
            self.frames_captured += 1
        assert self.camera_config is not None
        rendered = [self._render(source, self.camera_config[n]) for n in names]
        if not arrays:
            rendered = [self._as_buffer(r, self.camera_config[n])
                        for r, n in zip(rendered, names, strict=True)]
        if single:
            return rendered[0]
        return rendered, self.capture_metadata()

    def _next_source(self) -> np.ndarray:
        if self._replay is not None:
            frame = self._replay.read(1.0)
            if frame is None:
                raise RuntimeError(f"fake camera: no readable frame in {self._replay.path}")
            return frame.image
        return self._arrays[self.frames_captured % len(self._arrays)]

    @staticmethod
    def _render(bgr: np.ndarray, stream: dict[str, Any]) -> np.ndarray:
        fmt, size = stream["format"], tuple(stream["size"])
        image = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA) if bgr.shape[1::-1] != size else bgr
        if fmt == "YUV420":
            return bgr_to_yuv420(image, stream["stride"])
        if fmt == "RGB888":
            return np.ascontiguousarray(image)
        if fmt == "BGR888":
            return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if fmt == "XRGB8888":
            return cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGBA)

    @staticmethod
    def _as_buffer(array: np.ndarray, stream: dict[str, Any]) -> np.ndarray:
        """The flat bytes of a frame, padded to `stride` per row as the camera's buffer is."""
        if stream["format"] == "YUV420":
            return array.reshape(-1)
        h = stream["size"][1]
        rows = np.zeros((h, stream["stride"]), np.uint8)
        flat = array.reshape(h, -1)
        rows[:, : flat.shape[1]] = flat
        return rows.reshape(-1)
