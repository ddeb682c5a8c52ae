"""The detector's output type, shared by tracking, quality, alignment and the privacy filter."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Keypoint order of BlazeFace: the person's right eye (left in the image), left eye, nose tip, mouth centre,
# right ear tragion, left ear tragion.
RIGHT_EYE, LEFT_EYE, NOSE, MOUTH, RIGHT_EAR, LEFT_EAR = range(6)


@dataclass(frozen=True, slots=True)
class Detection:
    """One face in one frame: box (x1, y1, x2, y2) and keypoints (6×2) in frame pixels, score 0..1."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    def scaled(self, sx: float, sy: float) -> Detection:
        """The same face in another resolution of the frame (e.g. lores → main stream)."""
        x1, y1, x2, y2 = self.box
        return Detection((x1 * sx, y1 * sy, x2 * sx, y2 * sy), self.score,
                         self.keypoints * np.array([sx, sy], dtype=np.float32))


def iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 when they do not overlap."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
