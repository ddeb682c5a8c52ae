"""Fit the cosine → 0..1 score mapping (see firmware/match/score.py) on a folder of labelled faces.

The operating point is the cosine at which the open-set false-positive identification rate (FPIR) is
`fpir` (default 0.1 %, the policy's target) on the identification protocol of `firmware.eval.identify`, split
with a calibration seed that differs from the seed the evaluation reports on. It is not taken from the
all-pairs false-match rate: LFW's top impostor pairs are mostly label noise (one person under two names,
a photo of someone else in a person's folder, teammates in one photo), which puts a FAR-1e-6 threshold at
cosine 0.78, where fewer than half of genuine pairs pass. The per-comparison FAR at the chosen cosine is
still reported. The slope is a one-variable logistic regression of same/different on cosine over all
genuine and (sampled) impostor pairs.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from firmware.embed.recognizer import Recognizer
from firmware.errors import ModelError
from firmware.eval.embedding_set import embed_images
from firmware.eval.identify import open_set_scores
from firmware.eval.label_noise import load_label_noise
from firmware.eval.lfw import iter_images
from firmware.eval.listsize import GRID, ListSizeEval, tail_fmr
from firmware.eval.metrics import top_impostor_scores
from firmware.match.score import CALIBRATION_FILE, ScoreCalibration

DEFAULT_FPIR = 1e-3
CALIBRATION_SEED = 1
CURVE_TEMPLATES = (1, 2, 3, 4, 5)
CURVE_SHOTS = (1, 2, 3)
CURVE_GALLERY = 4_000


def fit_curves(emb: np.ndarray, paths: list[Path], seed: int = CALIBRATION_SEED) -> dict[str, Any]:
    """Per configuration (photos per entry × probe shots): FMR against cosine over every template × probe
    comparison of different people (label noise left out, tail extrapolated: `firmware.eval.listsize`), and
    TPIR against cosine on a gallery of up to CURVE_GALLERY people. What `match.policy = "budget"` reads."""
    names = [p.parent.name for p in paths]
    stems = [p.stem for p in paths]
    noise = load_label_noise()
    gallery = min(CURVE_GALLERY, len(set(names)))
    configs = []
    for k in CURVE_TEMPLATES:
        for s in CURVE_SHOTS:
            ev = ListSizeEval(emb, names, k, s, seed=seed, noise=noise, stems=stems)
            counts, total = ev.fmr_counts()
            fmr, tail = tail_fmr(counts, total)
            res = ev.run(gallery)
            tpir = [res.rates(float(c))["tpir"] or 0.0 for c in GRID]
            configs.append({"templates": k, "probe_shots": s, "impostor_comparisons": total,
                            "mated": len(res.mated_cos), "tail_from_cosine": tail["from_cosine"],
                            "fmr": [float(f"{x:.4g}") for x in fmr], "tpir": [round(float(x), 5) for x in tpir]})
    return {"cosine_start": float(GRID[0]), "cosine_step": float(GRID[1] - GRID[0]), "points": len(GRID),
            "gallery": gallery, "seed": seed, "label_noise_entries": len(noise.entries), "configuration": configs}


def logistic_slope(genuine: np.ndarray, impostor: np.ndarray, iterations: int = 50) -> tuple[float, float]:
    """(slope, intercept) of P(same | cosine) by Newton's method on balanced, equally weighted classes."""
    x = np.concatenate([genuine, impostor]).astype(np.float64)
    y = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    w = np.concatenate([np.full(len(genuine), 0.5 / len(genuine)), np.full(len(impostor), 0.5 / len(impostor))])
    a, b = 0.0, 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(a * x + b)))
        g = np.array([np.sum(w * (p - y) * x), np.sum(w * (p - y))])
        s = w * p * (1 - p)
        h = np.array([[np.sum(s * x * x), np.sum(s * x)], [np.sum(s * x), np.sum(s)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        a, b = a - step[0], b - step[1]
        if np.max(np.abs(step)) < 1e-9:
            break
    return float(a), float(b)


def fit(recognizer: Recognizer, images: Path, fpir: float = DEFAULT_FPIR, threshold: float = 0.6,
        seed: int = 1, cache_dir: Path | None = None) -> tuple[ScoreCalibration, dict[str, Any]]:
    paths = list(iter_images(images))
    emb = embed_images(recognizer, paths, cache_dir=cache_dir)
    labels = [p.parent.name for p in emb.paths]
    by_person: dict[str, list[int]] = {}
    for i, n in enumerate(labels):
        by_person.setdefault(n, []).append(i)
    genuine = np.array([float(emb.embeddings[i] @ emb.embeddings[j]) for idx in by_person.values()
                        for i, j in itertools.combinations(idx, 2)])
    top_imp, n_imp = top_impostor_scores(emb.embeddings, labels)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(labels), 4 * len(genuine))
    b = rng.integers(0, len(labels), 4 * len(genuine))
    keep = np.array([labels[i] != labels[j] for i, j in zip(a, b, strict=True)])
    sample_imp = np.einsum("ij,ij->i", emb.embeddings[a[keep]], emb.embeddings[b[keep]])
    slope, _ = logistic_slope(genuine, sample_imp)
    open_set = open_set_scores(recognizer, images, CALIBRATION_SEED, cache_dir)
    cosine = open_set.threshold_at_fpir(fpir)
    far = float(np.sum(top_imp >= cosine)) / n_imp
    if far * n_imp >= len(top_imp):
        raise ValueError(f"the chosen cosine {cosine:.3f} lies below the kept impostor scores")
    cal = ScoreCalibration(slope=slope, cosine_at_threshold=cosine, threshold=threshold, far=far)
    facts = {"images": len(paths), "people": len(by_person), "genuine_pairs": len(genuine),
             "impostor_pairs": n_imp, "failed_detections": len(emb.failed), "target_fpir": fpir,
             "calibration_seed": CALIBRATION_SEED, "calibration_gallery": open_set.gallery,
             "calibration_tpir": open_set.tpir_at(cosine),
             "far_per_comparison": far,
             "genuine_accepted_at_threshold": float(np.mean(genuine >= cal.cosine_at_threshold)),
             "backend": recognizer.health(), "curves": fit_curves(emb.embeddings, emb.paths)}
    return cal, facts


def _curves_text(curves: dict[str, Any]) -> str:
    lines = ["", "# Per configuration (photos per entry x fused probe shots): FMR and TPIR at cosine",
             "# cosine_start + i * cosine_step; read by match.policy = \"budget\" (firmware/match/operating_point.py).",
             "[curves]"]
    lines += [f"{k} = {v!r}" for k, v in curves.items() if k != "configuration"]
    for c in curves["configuration"]:
        lines += ["", "[[curves.configuration]]"] + [f"{k} = {v!r}" for k, v in c.items()]
    return "\n".join(lines) + "\n"


def write_curves(models_dir: Path, curves: dict[str, Any]) -> Path:
    """Replace only the `[curves]` of an existing calibration.toml (the score mapping stays as fitted)."""
    path = models_dir / CALIBRATION_FILE
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise ModelError(f"no score calibration at {path}; run `lfr eval calibrate` without --curves-only") from exc
    head = text.split("\n# Per configuration (photos per entry", 1)[0].rstrip("\n") + "\n"
    path.write_text(head + _curves_text(curves))
    return path


def write(cal: ScoreCalibration, facts: dict[str, Any], models_dir: Path, source: str) -> Path:
    path = models_dir / CALIBRATION_FILE
    lines = ["# Cosine → 0..1 score mapping; written by `lfr eval calibrate`, read by the matcher.",
             "# score = 1 / (1 + exp(-(slope * (cosine - cosine_at_threshold) + logit(threshold))))",
             f"slope = {cal.slope!r}", f"cosine_at_threshold = {cal.cosine_at_threshold!r}",
             f"threshold = {cal.threshold!r}", f"far = {cal.far!r}", f'fitted_on = "{source}"', "", "[facts]"]
    for k, v in facts.items():
        if isinstance(v, dict):
            continue
        lines.append(f"{k} = {v!r}")
    curves = facts.get("curves")
    path.write_text("\n".join(lines) + "\n" + (_curves_text(curves) if isinstance(curves, dict) else ""))
    return path
