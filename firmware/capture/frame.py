"""The frame type every source yields and every stage reads."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame.

    `image` is the full-resolution picture as H×W×3 uint8 in BGR order (OpenCV's order, and the memory order
    of picamera2's "RGB888"), used for crops. `lores` is an optional smaller BGR copy the camera made for
    detection (picamera2's lores stream); when None the detector scales `image` itself. Times: `t_mono` from
    time.monotonic() (ordering and intervals, immune to clock jumps), `t_wall` from time.time() (display).
    """

    camera: str
    index: int
    image: np.ndarray
    t_mono: float
    t_wall: float
    lores: np.ndarray | None = None


def lores_scale(frame: Frame) -> tuple[float, float]:
    """(sx, sy) mapping lores coordinates to `image` ones, for `Detection.scaled`; (1, 1) if no lores."""
    if frame.lores is None:
        return 1.0, 1.0
    return frame.image.shape[1] / frame.lores.shape[1], frame.image.shape[0] / frame.lores.shape[0]
