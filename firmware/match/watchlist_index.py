"""The active watchlist as one contiguous float32 matrix, searched with one matrix-vector product.

Rows are L2-normalised embeddings, so cosine similarity is a dot product; top-k uses argpartition, so the
search is O(N) with no sort of the whole list. An index is immutable: a new watchlist builds a new index
and the pipeline swaps the reference between frames, so no frame is matched against a half-loaded list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from firmware.errors import DataError
from firmware.match.score import ScoreCalibration


@dataclass(frozen=True, slots=True)
class Match:
    """One candidate: watchlist subject id, raw cosine and calibrated 0..1 score."""

    subject_id: str
    cosine: float
    score: float


class WatchlistIndex:
    """Immutable search structure over N subjects' embeddings (N×D float32, C-contiguous)."""

    def __init__(self, subject_ids: Sequence[str], embeddings: np.ndarray, calibration: ScoreCalibration,
                 version: str = "") -> None:
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(subject_ids):
            raise DataError(f"watchlist needs one embedding row per subject: {len(subject_ids)} ids, "
                            f"matrix {emb.shape}")
        norms = np.linalg.norm(emb, axis=1)
        if emb.shape[0] and (not np.all(np.isfinite(emb)) or np.any(np.abs(norms - 1.0) > 1e-3)):
            raise DataError("watchlist embeddings must be finite and L2-normalised")
        self.subject_ids = tuple(subject_ids)
        self.matrix = emb
        self.matrix.setflags(write=False)
        self.calibration = calibration
        self.version = version

    def __len__(self) -> int:
        return len(self.subject_ids)

    def search(self, probe: np.ndarray, k: int = 3) -> list[Match]:
        """The k most similar subjects to one unit-length probe, best first."""
        if not len(self):
            return []
        sims = self.matrix @ probe.astype(np.float32, copy=False)
        k = min(k, sims.shape[0])
        top = np.argpartition(-sims, k - 1)[:k]
        top = top[np.argsort(-sims[top])]
        scores = self.calibration.score(sims[top])
        return [Match(self.subject_ids[i], float(sims[i]), float(s)) for i, s in zip(top, scores, strict=True)]

    def best(self, probe: np.ndarray) -> Match | None:
        """The single most similar subject, or None for an empty list."""
        found = self.search(probe, 1)
        return found[0] if found else None
