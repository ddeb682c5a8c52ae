"""Open-set 1:N identification as a deployment sees it: TPIR and FPIR against a watchlist.

Subjects with ≥ 3 images are split in two halves by a fixed seed. The gallery (watchlist) is the first
image of each subject of the first half; a mated probe is that subject's next two images fused as one track;
non-mated probes are every subject not in the gallery (its next two images fused where it has them, its one
image otherwise). TPIR counts mated probes whose top candidate is the right subject at or above the
threshold; FPIR counts non-mated probes whose top candidate reaches the threshold.
"""

from __future__ import annotations

import random
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


def run_identify(recognizer: Recognizer, images: Path, calibration: ScoreCalibration,
                 seed: int = SEED, cache_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate the open-set protocol; returns the figures `lfr eval identify --json` prints."""
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
    non_top = np.array([top(ps)[1] for ps in non_mated.values()])
    correct = np.array([ok for ok, _ in mated_top])
    mated_cos = np.array([c for _, c in mated_top])
    op = calibration.cosine_at_threshold
    hits = int(np.sum(correct & (mated_cos >= op)))
    false = int(np.sum(non_top >= op))
    result: dict[str, Any] = {
        "gallery": len(ids), "mated": len(mated_top), "non_mated": len(non_top),
        "failed_detections": len(emb.failed), "score_threshold": calibration.threshold, "cosine_threshold": op,
        "tpir": hits / len(mated_top), "tpir_ci95": wilson(hits, len(mated_top)),
        "fpir": false / len(non_top), "fpir_ci95": wilson(false, len(non_top)),
        "rank1_accuracy": float(np.mean(correct)), "backend": recognizer.health(),
    }
    for fpir, key in ((1e-2, "tpir_at_fpir_1e-2"), (1e-3, "tpir_at_fpir_1e-3")):
        allowed = int(np.floor(fpir * len(non_top)))
        t = float(np.sort(non_top)[::-1][allowed]) + 1e-7 if allowed < len(non_top) else -1.0
        result[key] = float(np.mean(correct & (mated_cos >= t)))
        result[key.replace("tpir_at", "threshold_at")] = t
    return result
