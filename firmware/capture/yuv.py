"""YUV420 (I420) planes as picamera2 hands them out, to and from BGR.

picamera2's `capture_array` on a YUV420 stream returns a 2-D uint8 array of shape (H*3/2, stride): H rows of
Y, then the U plane (H/2 rows of stride/2 bytes, two of them per array row), then the V plane likewise.
`stride` is the row length in bytes, often padded past the width (e.g. 426 px wide -> 448 bytes).

With an RGB main stream, picamera2 picks the sYCC colour space (full-range BT.601, Y in 0..255). OpenCV's
COLOR_YUV2BGR_I420 assumes limited range (Y in 16..235) and would stretch the contrast, so the conversion
here goes through full-range YCrCb instead.
"""

from __future__ import annotations

import cv2
import numpy as np


def bgr_to_yuv420(image: np.ndarray, stride: int | None = None) -> np.ndarray:
    """Full-range I420 of a BGR uint8 image with even sides, laid out as picamera2 returns it.

    Returns shape (H*3/2, stride); `stride` (bytes, even, >= width) defaults to the width.
    """
    h, w = image.shape[:2]
    stride = w if stride is None else stride
    if h % 2 or w % 2:
        raise ValueError(f"YUV420 needs even width and height, got {w}x{h}")
    if stride < w or stride % 2:
        raise ValueError(f"stride must be even and at least the width {w}, got {stride}")
    ycrcb = cv2.cvtColor(image, cv2.COLOR_BGR2YCrCb)
    half = (w // 2, h // 2)
    cr = cv2.resize(ycrcb[:, :, 1], half, interpolation=cv2.INTER_AREA)
    cb = cv2.resize(ycrcb[:, :, 2], half, interpolation=cv2.INTER_AREA)
    y_plane = np.zeros((h, stride), np.uint8)
    y_plane[:, :w] = ycrcb[:, :, 0]
    u_plane = np.zeros((h // 2, stride // 2), np.uint8)
    u_plane[:, : w // 2] = cb
    v_plane = np.zeros((h // 2, stride // 2), np.uint8)
    v_plane[:, : w // 2] = cr
    return np.concatenate([y_plane.ravel(), u_plane.ravel(), v_plane.ravel()]).reshape(h * 3 // 2, stride)


def yuv420_to_bgr(array: np.ndarray, width: int) -> np.ndarray:
    """BGR uint8 (H×width×3) from a picamera2 full-range YUV420 array of shape (H*3/2, stride).

    Chroma is upsampled bilinearly; the padding past `width` is dropped.
    """
    rows, stride = array.shape
    h = rows * 2 // 3
    if array.dtype != np.uint8 or rows != h * 3 // 2 or h % 2 or stride < width or stride % 2:
        raise ValueError(f"not a YUV420 array for width {width}: shape {array.shape}, dtype {array.dtype}")
    flat = array.reshape(-1)
    y_plane = flat[: h * stride].reshape(h, stride)
    chroma = (h // 2) * (stride // 2)
    u_plane = flat[h * stride: h * stride + chroma].reshape(h // 2, stride // 2)
    v_plane = flat[h * stride + chroma: h * stride + 2 * chroma].reshape(h // 2, stride // 2)
    size = (width, h)
    cr = cv2.resize(v_plane[:, : width // 2], size, interpolation=cv2.INTER_LINEAR)
    cb = cv2.resize(u_plane[:, : width // 2], size, interpolation=cv2.INTER_LINEAR)
    ycrcb = cv2.merge([np.ascontiguousarray(y_plane[:, :width]), cr, cb])
    return cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR)
