"""LFW-style 1:1 verification: fold accuracy, TAR at FAR, ROC/DET plot, per-group error rates.

Accuracy follows the View 2 protocol on the pairs given (threshold chosen on the other folds). TAR at FAR
uses the file's same-person pairs as genuine scores and, as impostors, every pair of images of different
people among the images the file names (BLUFR-style): the file's own 300 impostors per fold cannot resolve
a FAR of 1e-4. Per-group FMR/FNMR are at the operating threshold (score 0.6) with 95 % Wilson intervals.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from firmware.embed.recognizer import Recognizer
from firmware.eval.embedding_set import embed_images
from firmware.eval.lfw import Pair, read_labels
from firmware.eval.metrics import far_threshold, fold_accuracy, roc_curve, top_impostor_scores, wilson
from firmware.match.score import ScoreCalibration
from firmware.plotting import pyplot


def pair_group(pair: Pair, attribute: str, labels: dict[str, dict[str, str]]) -> str | None:
    """The pair's group for `attribute` when both images share one label, else None (cross-group)."""
    table = labels.get(attribute, {})
    if attribute == "gender":
        a, b = table.get(pair.a.name), table.get(pair.b.name)
    else:
        a, b = table.get(pair.person_a), table.get(pair.person_b)
    return a if a is not None and a == b else None


def group_rates(pairs: list[Pair], cos: np.ndarray, threshold: float, attribute: str,
                labels: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """FMR and FNMR per group at a cosine `threshold`, with counts and 95 % intervals."""
    out: dict[str, dict[str, Any]] = {}
    groups = [pair_group(p, attribute, labels) for p in pairs]
    for g in sorted({g for g in groups if g is not None}):
        idx = [i for i, x in enumerate(groups) if x == g]
        gen = [i for i in idx if pairs[i].same]
        imp = [i for i in idx if not pairs[i].same]
        fnm = int(sum(cos[i] < threshold for i in gen))
        fm = int(sum(cos[i] >= threshold for i in imp))
        out[g] = {"genuine_pairs": len(gen), "impostor_pairs": len(imp),
                  "fnmr": fnm / len(gen) if gen else None, "fnmr_ci95": wilson(fnm, len(gen)),
                  "fmr": fm / len(imp) if imp else None, "fmr_ci95": wilson(fm, len(imp))}
    return out


def run_verify(recognizer: Recognizer, pairs: list[Pair], calibration: ScoreCalibration, *,
               by: tuple[str, ...] = (), labels_dir: Path | None = None,
               plot: Path | None = None, cache_dir: Path | None = None) -> dict[str, Any]:
    """Evaluate `pairs`; returns the figures `lfr eval verify --json` prints."""
    images = sorted({p.a for p in pairs} | {p.b for p in pairs})
    emb = embed_images(recognizer, images, cache_dir=cache_dir)
    index = emb.index()
    cos = np.array([float(emb.embeddings[index[p.a]] @ emb.embeddings[index[p.b]]) for p in pairs])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    acc, std, per_fold = fold_accuracy(cos, same, folds)
    genuine = cos[same]
    people = [p.parent.name for p in emb.paths]
    top_imp, n_imp = top_impostor_scores(emb.embeddings, people)
    result: dict[str, Any] = {
        "pairs": len(pairs), "folds": len(per_fold), "images": len(images),
        "failed_detections": len(emb.failed), "accuracy": acc, "accuracy_std": std,
        "accuracy_per_fold": per_fold, "impostor_pairs_for_far": n_imp,
        "backend": recognizer.health(),
    }
    for far, key in ((1e-3, "tar_at_far_1e-3"), (1e-4, "tar_at_far_1e-4")):
        t = far_threshold(top_imp, n_imp, far)
        result[key] = float(np.mean(genuine >= t))
        result[key.replace("tar", "threshold_cosine")] = t
    op = calibration.cosine_at_threshold
    fnm = int(np.sum(genuine < op))
    fm_pairs = int(np.sum(cos[~same] >= op))
    result["operating_point"] = {
        "score_threshold": calibration.threshold, "cosine": op,
        "fnmr": fnm / len(genuine), "fnmr_ci95": wilson(fnm, len(genuine)),
        "fmr_file_impostors": fm_pairs / int((~same).sum()),
        "fmr_all_impostors": float(np.sum(top_imp >= op)) / n_imp,
    }
    if by:
        if labels_dir is None:
            raise ValueError("--by needs --labels DIR")
        labels = read_labels(labels_dir)
        result["groups"] = {a: group_rates(pairs, cos, op, a, labels) for a in by}
        result["group_pair_counts"] = {a: dict(Counter(pair_group(p, a, labels) or "unlabelled/cross"
                                                        for p in pairs)) for a in by}
    if plot is not None:
        _plot(genuine, top_imp, n_imp, cos[~same], plot, result)
    return result


def _plot(genuine: np.ndarray, top_imp: np.ndarray, total: int, file_imp: np.ndarray, out: Path,
          result: dict[str, Any]) -> None:
    plt = pyplot()
    fig, (roc_ax, det_ax) = plt.subplots(1, 2, figsize=(11, 4.5))
    ts = np.linspace(-0.2, 1.0, 600)
    far = np.array([np.sum(top_imp >= t) / total for t in ts])
    tar = np.array([np.mean(genuine >= t) for t in ts])
    roc_ax.semilogx(np.clip(far, 1e-8, 1), tar)
    roc_ax.set(xlabel="false accept rate (all impostor pairs)", ylabel="true accept rate",
               title=f"ROC, accuracy {result['accuracy'] * 100:.2f} %", xlim=(1e-7, 1), ylim=(0.5, 1.0))
    roc_ax.grid(True, which="both", alpha=0.3)
    f2, t2 = roc_curve(genuine, file_imp)
    det_ax.loglog(np.clip(f2, 1e-4, 1), np.clip(1 - t2, 1e-4, 1))
    det_ax.set(xlabel="false match rate (pairs file)", ylabel="false non-match rate", title="DET")
    det_ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
