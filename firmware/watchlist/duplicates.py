"""Duplicate-subject check: two entries whose reference faces match each other are probably one person
listed twice (or a wrong photo), which would split or confuse alerts; they are reported, not dropped."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SimilarityFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""(n, d) and (m, d) embeddings -> (n, m) scores on the matcher's 0..1 scale."""


@dataclass(frozen=True)
class DuplicatePair:
    id_a: str
    id_b: str
    score: float


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Raw cosine of L2-normalised rows, in -1..1; pass the matcher's calibrated score for policy use."""
    return np.asarray(a, np.float32) @ np.asarray(b, np.float32).T


def find_duplicate_subjects(ids: Sequence[str], embeddings: np.ndarray, similarity: SimilarityFn,
                            threshold: float, block: int = 1024) -> list[DuplicatePair]:
    """Every pair i < j with similarity(e_i, e_j) >= threshold, best first; computed in row blocks so
    memory stays at block x N scores."""
    emb = np.asarray(embeddings)
    if emb.ndim != 2 or emb.shape[0] != len(ids):
        raise ValueError(f"embeddings of shape {emb.shape} do not match {len(ids)} ids")
    pairs: list[DuplicatePair] = []
    for start in range(0, len(ids), block):
        scores = np.asarray(similarity(emb[start:start + block], emb))
        rows, cols = np.nonzero(scores >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if i < c:
                pairs.append(DuplicatePair(ids[i], ids[c], float(scores[r, c])))
    return sorted(pairs, key=lambda p: -p.score)
