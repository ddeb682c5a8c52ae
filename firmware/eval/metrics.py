"""Biometric error rates from genuine and impostor scores: accuracy by folds, ROC, TAR at FAR, intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion; (0, 1) when n is 0."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold that maximises accuracy on these pairs (midpoint between neighbouring scores)."""
    order = np.argsort(scores)
    s, y = scores[order], same[order]
    # Accuracy when everything above position i is called "same": correct negatives below + positives above.
    neg_below = np.concatenate([[0], np.cumsum(~y)])
    pos_above = np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    i = int(np.argmax(neg_below + pos_above))
    if i == 0:
        return float(s[0]) - 1e-6
    if i == len(s):
        return float(s[-1]) + 1e-6
    return float((s[i - 1] + s[i]) / 2)


def fold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[float, float, list[float]]:
    """LFW protocol: for each fold, the threshold is chosen on the other folds; mean and std of accuracy."""
    accs = []
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        t = best_threshold(scores[train], same[train])
        accs.append(float(np.mean((scores[test] >= t) == same[test])))
    return float(np.mean(accs)), float(np.std(accs)), accs


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """(TAR, threshold) at the lowest threshold whose false-accept rate does not exceed `far`.

    With n impostors the finest FAR step is 1/n; when far < 1/n the threshold sits above every impostor.
    """
    imp = np.sort(impostor)[::-1]
    allowed = int(math.floor(far * len(imp)))
    threshold = float(imp[allowed]) + 1e-7 if allowed < len(imp) else float(imp[-1])
    return float(np.mean(genuine >= threshold)), threshold


def roc_curve(genuine: np.ndarray, impostor: np.ndarray, points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) arrays over thresholds spanning the scores, for plotting."""
    lo = min(float(genuine.min()), float(impostor.min()))
    hi = max(float(genuine.max()), float(impostor.max()))
    ts = np.linspace(lo, hi, points)
    imp = np.sort(impostor)
    gen = np.sort(genuine)
    far = 1.0 - np.searchsorted(imp, ts, side="left") / len(imp)
    tar = 1.0 - np.searchsorted(gen, ts, side="left") / len(gen)
    return far, tar


def top_impostor_scores(emb: np.ndarray, labels: Sequence[str], keep: int = 200_000,
                        block: int = 1024) -> tuple[np.ndarray, int]:
    """The highest cosine scores among all pairs of different people, and how many such pairs there are.

    All-pairs impostor sets give FAR estimates far below 1/(pairs in a pairs file); only the top `keep`
    are returned, since only the tail matters for thresholds.
    """
    lab = np.asarray(labels)
    tops: list[np.ndarray] = []
    total = 0
    for start in range(0, len(emb), block):
        sims = emb[start:start + block] @ emb.T
        rows = np.arange(start, min(start + block, len(emb)))
        mask = (lab[rows][:, None] != lab[None, :]) & (rows[:, None] < np.arange(len(emb))[None, :])
        vals = sims[mask]
        total += vals.size
        if vals.size > keep:
            vals = np.partition(vals, -keep)[-keep:]
        tops.append(vals)
    allv = np.concatenate(tops) if tops else np.empty(0, np.float32)
    if allv.size > keep:
        allv = np.partition(allv, -keep)[-keep:]
    return np.sort(allv)[::-1], total


def far_threshold(top_impostors: np.ndarray, total: int, far: float) -> float:
    """The cosine above which a fraction `far` of all `total` impostor pairs lies (from the top scores)."""
    k = int(math.floor(far * total))
    if k >= len(top_impostors):
        raise ValueError(f"FAR {far} needs the top {k} impostor scores, only {len(top_impostors)} kept")
    return float(top_impostors[k]) + 1e-7
