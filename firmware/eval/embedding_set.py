"""Embed a list of portrait photos once, with a documented fallback for faces the detector misses.

An image where no face is found is counted as a failed detection and aligned with the mean box and keypoints
of the images where one was found (scaled to its size): LFW photos are centred on the labelled face, so this is
the usual protocol fallback, and the count is reported beside every figure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from firmware.detect.detection import Detection
from firmware.embed.recognizer import PORTRAIT_PADS, Recognizer
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


def _cache_file(recognizer: Recognizer, cache_dir: Path, pads: tuple[float, ...]) -> Path:
    """One cache file per set of model files (by sha256 of their bytes, landmark model included) and padding."""
    digest = hashlib.sha256()
    models = [recognizer.detector.model, recognizer.embedder.model]
    if recognizer.landmarker is not None:
        models.append(recognizer.landmarker.model)
    for lm in models:
        digest.update(lm.path.read_bytes())
    return cache_dir / f"embeddings-{digest.hexdigest()[:16]}-pads{'-'.join(f'{p:g}' for p in pads)}.npz"


def embed_images(recognizer: Recognizer, paths: Sequence[Path], pads: tuple[float, ...] = PORTRAIT_PADS,
                 cache_dir: Path | None = None) -> EmbeddedImages:
    """Detect the main face of each photo, align, embed; fall back to mean keypoints where none is found.

    With `cache_dir`, results are kept per model pair and image (path, size, mtime), so evaluations that
    share images (calibrate, verify, identify) embed each image once. A cache entry is used only when the
    same model bytes made it; the fallback keypoints are recomputed from the images of this call.
    """
    paths = list(dict.fromkeys(paths))
    if cache_dir is not None:
        cache = _cache_file(recognizer, cache_dir, pads)
        stored: dict[str, np.ndarray] = dict(np.load(cache)) if cache.exists() else {}
        keys = [f"{p.resolve()}|{p.stat().st_size}|{p.stat().st_mtime_ns}" for p in paths]
        key_of = dict(zip(paths, keys, strict=True))
        missing = [p for p in paths if key_of[p] not in stored]
        if missing:
            fresh = embed_images(recognizer, missing, pads)
            for j, p in enumerate(fresh.paths):
                stored[key_of[p]] = np.append(fresh.embeddings[j], np.float32(j in fresh.failed))
            cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, **stored)  # type: ignore[arg-type]
            tmp.replace(cache)
        rows = np.stack([stored[k] for k in keys])
        return EmbeddedImages(paths, np.ascontiguousarray(rows[:, :-1]), set(np.nonzero(rows[:, -1])[0].tolist()))
    # Box corners and keypoints of the main face as fractions of the image size: an 8×2 array per image.
    found: dict[int, np.ndarray] = {}
    sizes: dict[int, tuple[int, int]] = {}
    for i, path in enumerate(progress(paths, "detecting", len(paths))):
        img = read_image(path)
        sizes[i] = img.shape[:2]
        dets = recognizer.main_face(img, pads)
        if dets:
            points = np.vstack([np.reshape(dets[0].box, (2, 2)), dets[0].keypoints])
            found[i] = points / np.array([img.shape[1], img.shape[0]], np.float32)
    if not found:
        raise DataError(f"no face detected in any of {len(paths)} images; are they face photos?")
    mean_points = np.mean(np.stack(list(found.values())), axis=0)
    emb = np.empty((len(paths), 192), np.float32)
    for i, path in enumerate(progress(paths, "embedding", len(paths))):
        img = read_image(path)
        h, w = sizes[i]
        points = (found[i] if i in found else mean_points) * np.array([w, h], np.float32)
        x1, y1, x2, y2 = (float(v) for v in points[:2].reshape(-1))
        det = Detection((x1, y1, x2, y2), 1.0, points[2:].astype(np.float32))
        emb[i] = recognizer.embed(recognizer.face(img, det))
    return EmbeddedImages(paths, emb, set(range(len(paths))) - set(found))
