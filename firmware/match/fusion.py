"""Fuse several embeddings of one person (a track's best faces) into one probe.

The fused probe is the L2-normalised, quality-weighted sum of unit embeddings: averaging on the sphere
cancels part of each shot's pose and blur noise, so two fair shots match better than either alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def fuse(embeddings: Sequence[np.ndarray] | np.ndarray, weights: Sequence[float] | None = None) -> np.ndarray:
    """One unit vector from N unit vectors; `weights` (e.g. quality scores, ≥ 0) default to equal."""
    e = np.asarray(embeddings, dtype=np.float32)
    if e.ndim != 2 or e.shape[0] == 0:
        raise ValueError(f"need a non-empty N×D array of embeddings, got shape {e.shape}")
    w = np.ones(e.shape[0], np.float32) if weights is None else np.asarray(weights, np.float32)
    v = (e * w[:, None]).sum(0)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else e[0]
