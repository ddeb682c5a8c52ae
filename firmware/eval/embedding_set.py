"""Embed a list of portrait photos once, with a documented fallback for faces the detector misses.

An image where no face is found is counted as a failed detection and aligned with the mean keypoints of
the images where one was found (scaled to its size): LFW photos are centred on the labelled face, so this is
the usual protocol fallback, and the count is reported beside every figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from firmware.detect.detection import Detection
from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError
from firmware.progress import progress


@dataclass
class EmbeddedImages:
    """Embeddings (N×192, unit length) of `paths` in order; `failed` are indexes with no face detected."""

    paths: list[Path]
    embeddings: np.ndarray
    failed: set[int]

    def index(self) -> dict[Path, int]:
        return {p: i for i, p in enumerate(self.paths)}


def read_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(f"cannot read image {path} (missing or not an image)")
    return img


def embed_images(recognizer: Recognizer, paths: Sequence[Path], pad: float = 0.25) -> EmbeddedImages:
    """Detect the main face of each photo, align, embed; fall back to mean keypoints where none is found."""
    paths = list(dict.fromkeys(paths))
    found: dict[int, np.ndarray] = {}
    sizes: dict[int, tuple[int, int]] = {}
    for i, path in enumerate(progress(paths, "detecting", len(paths))):
        img = read_image(path)
        sizes[i] = img.shape[:2]
        dets = recognizer.main_face(img, pad)
        if dets:
            found[i] = dets[0].keypoints / np.array([img.shape[1], img.shape[0]], np.float32)
    if not found:
        raise DataError(f"no face detected in any of {len(paths)} images; are they face photos?")
    mean_kp = np.mean(np.stack(list(found.values())), axis=0)
    emb = np.empty((len(paths), 192), np.float32)
    for i, path in enumerate(progress(paths, "embedding", len(paths))):
        img = read_image(path)
        h, w = sizes[i]
        kp = (found.get(i, mean_kp) * np.array([w, h], np.float32)).astype(np.float32)
        det = Detection((0.0, 0.0, float(w), float(h)), 1.0, kp)
        emb[i] = recognizer.embed(recognizer.face(img, det))
    return EmbeddedImages(paths, emb, set(range(len(paths))) - set(found))
