"""Images that leave the camera process: the alert's probe crop, its context frame and the live preview.

The preview is made from a downscaled copy of the frame in which every face box of the frame is pixelated,
except the faces of tracks that matched a watchlist subject; only that JPEG leaves the process. Boxes and
scores of the pixelated faces are not sent, and the full-resolution frame never is.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from firmware.errors import DataError

PROBE_JPEG_QUALITY = 92
PREVIEW_JPEG_QUALITY = 70
PIXELATE_MARGIN = 0.25  # fraction of the box size added on every side, so hair and chin are covered too
Box = tuple[float, float, float, float]


def _jpeg(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError(f"cannot encode a {image.shape} image as JPEG")
    return buf.tobytes()


def expand(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """`box` grown by `margin` box sizes on each side, clipped to the image, as integer pixels."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    return (max(0, int(x1 - mx)), max(0, int(y1 - my)), min(width, int(np.ceil(x2 + mx))),
            min(height, int(np.ceil(y2 + my))))


def probe_crop_jpeg(image: np.ndarray, box: Box, margin: float) -> bytes:
    """The face at `box` (frame pixels) with `margin` face sizes around it, cut from the full frame (JPEG)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = expand(box, margin, w, h)
    if x2 <= x1 or y2 <= y1:
        raise DataError(f"probe box {box} lies outside the {w}×{h} frame")
    return _jpeg(image[y1:y2, x1:x2], PROBE_JPEG_QUALITY)


def pixelate(image: np.ndarray, box: tuple[int, int, int, int], blocks: int) -> None:
    """Replace the region `box` of `image` (in place) by at most `blocks`×`blocks` flat blocks."""
    x1, y1, x2, y2 = box
    region = image[y1:y2, x1:x2]
    if region.size == 0:
        return
    small = cv2.resize(region, (min(blocks, region.shape[1]), min(blocks, region.shape[0])),
                       interpolation=cv2.INTER_AREA)
    image[y1:y2, x1:x2] = cv2.resize(small, (region.shape[1], region.shape[0]),
                                     interpolation=cv2.INTER_NEAREST)


def context_jpeg(image: np.ndarray, subject: Box, others: Sequence[Box], *, width: int,
                 blocks: int) -> bytes:
    """The alert's context: the whole frame at preview size with the subject outlined and every other face
    pixelated (matched or not), made here like the preview, so no other face leaves the camera process."""
    return preview_jpeg(image, others, [subject], width=width, blocks=blocks)[0]


def preview_jpeg(image: np.ndarray, hidden: Sequence[Box], shown: Sequence[Box], *, width: int,
                 blocks: int) -> tuple[bytes, int, int]:
    """A downscaled JPEG of `image` with every `hidden` face pixelated and `shown` faces outlined.

    Boxes are in `image` pixels. Returns (jpeg, width, height) of the preview.
    """
    h, w = image.shape[:2]
    scale = min(1.0, width / w)
    pw, ph = max(1, round(w * scale)), max(1, round(h * scale))
    small = cv2.resize(image, (pw, ph), interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    for box in hidden:
        scaled = (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)
        pixelate(small, expand(scaled, PIXELATE_MARGIN, pw, ph), blocks)
    for box in shown:
        x1, y1, x2, y2 = (int(round(v * scale)) for v in box)
        cv2.rectangle(small, (x1, y1), (x2, y2), (0, 0, 255), 2)
    return _jpeg(small, PREVIEW_JPEG_QUALITY), pw, ph
