"""Which frame source adapter a camera uses, by the name in its `[[cameras]]` config section.

The registry is an explicit dict (no discovery by import side effect) so the set of adapters is visible here.
"""

from __future__ import annotations

from typing import Any

from firmware.capture.opencv_source import OpenCVSource
from firmware.capture.picamera2_source import CameraFactory, Picamera2Source
from firmware.capture.replay import ReplaySource
from firmware.capture.source import FrameSource
from firmware.config import CameraConfig
from firmware.errors import ConfigError

SOURCES: dict[str, Any] = {
    "picamera2": Picamera2Source,
    "opencv": OpenCVSource,
    "replay": ReplaySource,
}


def make_source(cfg: CameraConfig, *, picamera2_factory: CameraFactory | None = None) -> FrameSource:
    """The (unopened) source `cfg` describes; `picamera2_factory` swaps in e.g. `FakePicamera2` (demo)."""
    try:
        adapter = SOURCES[cfg.source]
    except KeyError:
        known = ", ".join(SOURCES)
        raise ConfigError(f"camera {cfg.name!r}: unknown source {cfg.source!r}; known: {known}") from None
    if adapter is Picamera2Source:
        return Picamera2Source.from_config(cfg, camera_factory=picamera2_factory)
    source: FrameSource = adapter.from_config(cfg)
    return source
