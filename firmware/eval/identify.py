"""Open-set 1:N identification as a deployment sees it: TPIR and FPIR against a watchlist.

Subjects with ≥ 3 images are split in two halves by a fixed seed. The gallery (watchlist) is the first
image of each subject of the first half; a mated probe is that subject's next two images fused as one track;
non-mated probes are every subject not in the gallery (its next two images fused where it has them, its one
image otherwise). TPIR counts mated probes whose top candidate is the right subject at or above the
threshold; FPIR counts non-mated probes whose top candidate reaches the threshold.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware.embed.recognizer import Recognizer
from firmware.eval.embedding_set import embed_images
from firmware.eval.lfw import people
from firmware.eval.metrics import wilson
from firmware.match.fusion import fuse
from firmware.match.score import ScoreCalibration

SEED = 7


def split(images: Path, seed: int = SEED) -> tuple[dict[str, Path], dict[str, list[Path]], dict[str, list[Path]]]:
    """(gallery: subject → image, mated: subject → probe images, non_mated: subject → probe images)."""
    all_people = people(images)
    rich = sorted(n for n, files in all_people.items() if len(files) >= 3)
    random.Random(seed).shuffle(rich)
    first = set(rich[: len(rich) // 2])
    gallery = {n: all_people[n][0] for n in sorted(first)}
    mated = {n: all_people[n][1:3] for n in sorted(first)}
    non_mated = {n: (files[1:3] if len(files) >= 3 else files[:2])
                 for n, files in all_people.items() if n not in first}
    return gallery, mated, non_mated


@dataclass(frozen=True)
class OpenSetScores:
    """Top-candidate cosines of one split: mated probes (and whether rank 1 was right), non-mated probes."""

    gallery: int
    correct: np.ndarray
    mated_cos: np.ndarray
    non_mated_cos: np.ndarray
    failed_detections: int

    def threshold_at_fpir(self, fpir: float) -> float:
        """The lowest cosine at which at most a fraction `fpir` of non-mated probes reach it."""
        allowed = int(np.floor(fpir * len(self.non_mated_cos)))
        ranked = np.sort(self.non_mated_cos)[::-1]
        return float(ranked[allowed]) + 1e-7 if allowed < len(ranked) else -1.0

    def tpir_at(self, cosine: float) -> float:
        return float(np.mean(self.correct & (self.mated_cos >= cosine)))


def open_set_scores(recognizer: Recognizer, images: Path, seed: int = SEED,
                    cache_dir: Path | None = None) -> OpenSetScores:
    """Embed the split's images and search every probe (fused over its images) against the gallery."""
    gallery, mated, non_mated = split(images, seed)
    paths = list(gallery.values()) + [p for ps in mated.values() for p in ps] + \
        [p for ps in non_mated.values() for p in ps]
    emb = embed_images(recognizer, paths, cache_dir=cache_dir)
    idx = emb.index()
    ids = list(gallery)
    g = np.stack([emb.embeddings[idx[gallery[n]]] for n in ids])

    def top(probe_paths: list[Path]) -> tuple[int, float]:
        sims = g @ fuse([emb.embeddings[idx[p]] for p in probe_paths])
        best = int(np.argmax(sims))
        return best, float(sims[best])

    mated_top = [(ids[b] == n, c) for n, ps in mated.items() for b, c in [top(ps)]]
    return OpenSetScores(len(ids), np.array([ok for ok, _ in mated_top]), np.array([c for _, c in mated_top]),
                         np.array([top(ps)[1] for ps in non_mated.values()]), len(emb.failed))


def run_identify(recognizer: Recognizer, images: Path, calibration: ScoreCalibration,
                 seed: int = SEED, cache_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate the open-set protocol; returns the figures `lfr eval identify --json` prints."""
    s = open_set_scores(recognizer, images, seed, cache_dir)
    op = calibration.cosine_at_threshold
    mated, non = len(s.mated_cos), len(s.non_mated_cos)
    hits = int(np.sum(s.correct & (s.mated_cos >= op)))
    false = int(np.sum(s.non_mated_cos >= op))
    result: dict[str, Any] = {
        "gallery": s.gallery, "mated": mated, "non_mated": non, "seed": seed,
        "failed_detections": s.failed_detections, "score_threshold": calibration.threshold, "cosine_threshold": op,
        "tpir": hits / mated, "tpir_ci95": wilson(hits, mated),
        "fpir": false / non, "fpir_ci95": wilson(false, non),
        "rank1_accuracy": float(np.mean(s.correct)), "backend": recognizer.health(),
    }
    for fpir, key in ((1e-2, "tpir_at_fpir_1e-2"), (1e-3, "tpir_at_fpir_1e-3")):
        t = s.threshold_at_fpir(fpir)
        result[key] = s.tpir_at(t)
        result[key.replace("tpir_at", "threshold_at")] = t
    return result
