"""Is a face worth embedding? Size, sharpness and pose from the keypoints, each with a documented limit.

- size: the eye-to-mouth-scaled face size in frame pixels. MobileFaceNet sees 112×112; a face whose
  template-equivalent size is below `min_face_px` is upsampled and its embedding is unreliable.
- sharpness: variance of the Laplacian of the aligned grey face (motion blur and defocus drive it down).
- yaw: horizontal offset of the nose tip from the eye midpoint, divided by the eye distance: about 0 when
  frontal, 0.5 near 45°, unreliable beyond; the matcher's accuracy falls steeply with yaw.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from firmware.detect.detection import LEFT_EYE, MOUTH, NOSE, RIGHT_EYE, Detection

# Eye-midpoint-to-mouth distance in the 112×112 template: 40.7 px of 112.
TEMPLATE_EYE_MOUTH = 40.7


@dataclass(frozen=True, slots=True)
class Quality:
    """Measured quality of one face and the verdict against the limits; `reason` says why not."""

    size_px: float
    sharpness: float
    yaw: float
    ok: bool
    reason: str = ""

    @property
    def score(self) -> float:
        """0..1 ranking of faces of one track: bigger, sharper, more frontal is better."""
        return rank(self.size_px, self.sharpness, self.yaw)


FULL_SIZE_PX = 112.0
"""A face this size (the embedder's template) or larger scores full marks for size."""
FULL_SHARPNESS = 200.0
"""Laplacian variance from which a face scores full marks for sharpness."""


def rank(size_px: float, sharp: float, yaw: float) -> float:
    """`Quality.score` from its three measures: size, sharpness and frontality weighted 0.4, 0.3, 0.3."""
    return (min(size_px / FULL_SIZE_PX, 1.0) * 0.4 + min(sharp / FULL_SHARPNESS, 1.0) * 0.3
            + max(0.0, 1.0 - yaw) * 0.3)


def best_possible(det: Detection, *, min_face_px: float, max_yaw: float) -> float | None:
    """The highest score `det` can reach (its size and pose, at full sharpness), or None when its size or pose
    already fails the gate: both come from the detector's keypoints, so no alignment is needed to know."""
    size, yaw = face_size_px(det), yaw_proxy(det)
    if size < min_face_px or yaw > max_yaw:
        return None
    return rank(size, FULL_SHARPNESS, yaw)


def face_size_px(det: Detection) -> float:
    """The face's size as the side of the template square it would fill, in frame pixels."""
    kp = det.keypoints
    eyes = (kp[RIGHT_EYE] + kp[LEFT_EYE]) / 2.0
    return float(np.linalg.norm(kp[MOUTH] - eyes)) * 112.0 / TEMPLATE_EYE_MOUTH


def yaw_proxy(det: Detection) -> float:
    kp = det.keypoints
    eye_vec = kp[LEFT_EYE] - kp[RIGHT_EYE]
    d = float(np.linalg.norm(eye_vec))
    if d < 1e-6:
        return 1.0
    mid = (kp[RIGHT_EYE] + kp[LEFT_EYE]) / 2.0
    return abs(float(np.dot(kp[NOSE] - mid, eye_vec / d))) / d


def sharpness(aligned_bgr: np.ndarray) -> float:
    grey = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def assess(det: Detection, aligned_bgr: np.ndarray, *, min_face_px: float, min_sharpness: float,
           max_yaw: float) -> Quality:
    """Measure `det` and its aligned crop against the limits (see the module docstring for units)."""
    size, sharp, yaw = face_size_px(det), sharpness(aligned_bgr), yaw_proxy(det)
    reason = ""
    if size < min_face_px:
        reason = f"face too small ({size:.0f} px < {min_face_px:.0f})"
    elif sharp < min_sharpness:
        reason = f"too blurred (sharpness {sharp:.0f} < {min_sharpness:.0f})"
    elif yaw > max_yaw:
        reason = f"head turned too far (yaw {yaw:.2f} > {max_yaw:.2f})"
    return Quality(size, sharp, yaw, not reason, reason)
