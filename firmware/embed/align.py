"""Align a face to the 112×112 template with a least-squares similarity transform of four keypoints.

The template is the ArcFace/InsightFace 112×112 layout: eyes (38.29, 51.69) and (73.53, 51.50), nose tip
(56.03, 71.74), mouth centre (56.14, 92.28, the mean of the two mouth corners). BlazeFace's ear points are
not used: they are unstable when the head turns. Only the 112×112 crop is produced; the frame is not copied.
"""

from __future__ import annotations

import cv2
import numpy as np

from firmware.detect.detection import LEFT_EYE, MOUTH, NOSE, RIGHT_EYE

ALIGNED_SIZE = 112
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [56.1396, 92.2848]],
                    dtype=np.float64)
KEYPOINTS_USED = (RIGHT_EYE, LEFT_EYE, NOSE, MOUTH)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2×3 rotation+uniform scale+translation that maps `src` points onto `dst` best (Umeyama, 1991)."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rot = u @ np.diag(sign) @ vt
    var_s = (s0 ** 2).sum() / len(src)
    scale = (sig * sign).sum() / var_s if var_s > 0 else 1.0
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def align_face(image_bgr: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The 112×112 BGR face whose eyes, nose and mouth sit on the template."""
    m = similarity_transform(keypoints[list(KEYPOINTS_USED)], TEMPLATE)
    return cv2.warpAffine(image_bgr, m, (ALIGNED_SIZE, ALIGNED_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
