"""Test scenes for benchmarks: real LFW faces pasted on a real street frame, composed in memory.

Nothing is written to disk: the scene is third-party data and only lives in the benchmark process. Faces are
placed on a jittered grid so they never overlap, each as an oval cut-out of the LFW photo's centre with a
feathered edge (a hard rectangle would give the detector an easy border to lock on to).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from firmware.errors import DataError

FULL_HD = (1920, 1080)
# The centre of a 250×250 LFW photo that holds the face with some hair and chin (x1, y1, x2, y2).
LFW_FACE_CROP = (55, 40, 195, 215)


@dataclass(frozen=True)
class Scene:
    """A composed BGR frame, the LFW images used, and where each was pasted (x1, y1, x2, y2) in pixels."""

    frame: np.ndarray
    sources: tuple[Path, ...]
    boxes: tuple[tuple[int, int, int, int], ...]


def read_background(path: Path, size: tuple[int, int] = FULL_HD) -> np.ndarray:
    """The first frame of a video (or an image) resized to `size` (width, height), BGR uint8."""
    is_image = path.suffix.lower() in (".jpg", ".jpeg", ".png")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR) if is_image else None
    if img is None:
        cap = cv2.VideoCapture(str(path))
        try:
            ok, img = cap.read()
        finally:
            cap.release()
        if not ok or img is None:
            raise DataError(f"cannot read a background frame from {path} (missing or not a video/image)")
    return cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)


def _oval_mask(h: int, w: int) -> np.ndarray:
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, h // 2), (int(w * 0.46), int(h * 0.47)), 0, 0, 360, 1.0, -1)
    k = max(3, (min(h, w) // 10) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)[..., None]


def compose(background: np.ndarray, faces: list[Path], *, face_height: int = 220, seed: int = 0) -> Scene:
    """Paste `faces` (LFW photos) onto a copy of `background`, each `face_height` pixels tall."""
    x1c, y1c, x2c, y2c = LFW_FACE_CROP
    fh = face_height
    fw = round(fh * (x2c - x1c) / (y2c - y1c))
    h, w = background.shape[:2]
    cols, rows = max(1, w // (fw + 20)), max(1, h // (fh + 20))
    if len(faces) > cols * rows:
        raise DataError(f"{len(faces)} faces of {fh} px do not fit in a {w}×{h} frame "
                        f"(at most {cols * rows})")
    rng = np.random.default_rng(seed)
    cells = rng.permutation(cols * rows)[:len(faces)]
    cw, ch = w // cols, h // rows
    frame = background.copy()
    mask = _oval_mask(fh, fw)
    boxes = []
    for path, cell in zip(faces, cells, strict=True):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise DataError(f"cannot read face image {path}")
        crop = cv2.resize(img[y1c:y2c, x1c:x2c], (fw, fh), interpolation=cv2.INTER_LINEAR)
        r, c = divmod(int(cell), cols)
        x = c * cw + int(rng.integers(0, max(1, cw - fw)))
        y = r * ch + int(rng.integers(0, max(1, ch - fh)))
        roi = frame[y:y + fh, x:x + fw].astype(np.float32)
        frame[y:y + fh, x:x + fw] = (crop * mask + roi * (1.0 - mask)).astype(np.uint8)
        boxes.append((x, y, x + fw, y + fh))
    return Scene(frame, tuple(faces), tuple(boxes))
