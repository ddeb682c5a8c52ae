#!/usr/bin/env python3
"""Compare alignment keypoints on LFW: BlazeFace's own against the face mesh's (`face_landmark.tflite`).

Runs the LFW View 2 verification (`lfr eval verify`'s figures) once per landmark source on the same detector
and embedder, and times the extra cost per face. Embeddings are cached per model set, so reruns are cheap.

    .venv/bin/python scripts/compare_alignment.py --pairs ../shared/data/lfw/pairs.txt \
        --images ../shared/data/lfw/images [--precision int8|float] [--json]

Both use the model files of models/ (the face mesh as `face_landmarks_<precision>.tflite`, built by
scripts/build_models.py); `embed.landmarks` of the configuration is overridden for each source in turn.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from firmware.cli.eval_cmd import DEFAULT_CACHE
from firmware.config import EmbedConfig, load_config
from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError, LfrError
from firmware.eval.embedding_set import embed_images, read_image
from firmware.eval.lfw import Pair, read_pairs
from firmware.eval.verify import run_verify
from firmware.match.score import load_calibration


def genuine_cosines(rec: Recognizer, pairs: list[Pair], cache: Path | None) -> np.ndarray:
    """Cosine of every same-person pair (from the embedding cache the verification just filled)."""
    emb = embed_images(rec, sorted({p.a for p in pairs} | {p.b for p in pairs}), cache_dir=cache)
    index = emb.index()
    return np.array([float(emb.embeddings[index[p.a]] @ emb.embeddings[index[p.b]]) for p in pairs if p.same])


def sign_test(wins: int, losses: int) -> float:
    """Two-sided binomial p-value that `wins` vs `losses` discordant pairs arose from a fair coin."""
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * sum(math.comb(n, i) for i in range(k + 1)) / 2.0 ** n)


def time_faces(recognizers: dict[str, Recognizer], images: list[Path], repeats: int = 3) -> dict[str, float]:
    """Milliseconds per face of `Recognizer.face` (landmarks + alignment + quality) for each source."""
    frames = []
    base = next(iter(recognizers.values()))
    for path in images:
        img = read_image(path)
        dets = base.main_face(img)
        if dets:
            frames.append((img, dets[0]))
    if not frames:
        raise DataError("no face detected in the timing images")
    out = {}
    for name, rec in recognizers.items():
        rec.face(*frames[0])  # warm-up
        t0 = time.perf_counter()
        for _ in range(repeats):
            for img, det in frames:
                rec.face(img, det)
        out[name] = (time.perf_counter() - t0) / (repeats * len(frames)) * 1e3
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, required=True, help="pairs file in LFW View 2 format")
    ap.add_argument("--images", type=Path, required=True, help="folder of <Name>/<Name>_NNNN.jpg images")
    ap.add_argument("--precision", choices=("int8", "float"), default="int8", help="detector/embedder files")
    ap.add_argument("--config", type=Path, help="appliance configuration (default: built-in defaults)")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="embedding cache folder")
    ap.add_argument("--timing-faces", type=int, default=200, help="faces timed per landmark source")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    try:
        cfg = load_config(args.config)
        pairs = read_pairs(args.pairs, args.images)
        sources = {name: Recognizer.from_config(dataclasses.replace(cfg, embed=EmbedConfig(landmarks=name)),
                                                precision=args.precision) for name in ("blazeface", "mesh")}
        calibration = load_calibration(Path(cfg.models.dir))
        results: dict[str, Any] = {}
        for name, rec in sources.items():
            r = run_verify(rec, pairs, calibration, cache_dir=args.cache)
            results[name] = {k: r[k] for k in ("accuracy", "accuracy_std", "accuracy_per_fold", "tar_at_far_1e-3",
                                               "tar_at_far_1e-4", "failed_detections", "pairs")}
            results[name]["genuine"] = genuine_cosines(rec, pairs, args.cache)
            results[name]["threshold_1e-4"] = r["threshold_cosine_at_far_1e-4"]
        images = sorted({p.a for p in pairs})[: args.timing_faces]
        for name, ms in time_faces(sources, images).items():
            results[name]["ms_per_face"] = ms
    except LfrError as exc:
        print(f"compare_alignment: error: {exc}", file=sys.stderr)
        return 2
    accepted = {name: r.pop("genuine") >= r.pop("threshold_1e-4") for name, r in results.items()}
    only_mesh = int(np.sum(accepted["mesh"] & ~accepted["blazeface"]))
    only_blaze = int(np.sum(accepted["blazeface"] & ~accepted["mesh"]))
    diff = np.array(results["mesh"]["accuracy_per_fold"]) - np.array(results["blazeface"]["accuracy_per_fold"])
    out = {"precision": args.precision, "sources": results,
           "mesh_minus_blazeface": {"accuracy": float(diff.mean()), "fold_std": float(diff.std()),
                                    "folds_better": int((diff > 0).sum()), "folds_worse": int((diff < 0).sum()),
                                    "genuine_accepted_at_far_1e-4_only_by_mesh": only_mesh,
                                    "genuine_accepted_at_far_1e-4_only_by_blazeface": only_blaze,
                                    "sign_test_p": sign_test(only_mesh, only_blaze)}}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"LFW View 2, {results['blazeface']['pairs']} pairs, {args.precision} detector and embedder")
    for name, r in results.items():
        folds = " ".join(f"{a * 100:.2f}" for a in r["accuracy_per_fold"])
        print(f"{name:9s} accuracy {r['accuracy'] * 100:.2f} % ± {r['accuracy_std'] * 100:.2f}  "
              f"TAR@FAR 1e-3 {r['tar_at_far_1e-3'] * 100:.2f} %  1e-4 {r['tar_at_far_1e-4'] * 100:.2f} %  "
              f"{r['ms_per_face']:.2f} ms/face (landmarks+align+quality)\n          folds: {folds}")
    d = out["mesh_minus_blazeface"]
    print(f"mesh − blazeface: {d['accuracy'] * 100:+.2f} points (per-fold std {d['fold_std'] * 100:.2f}), "
          f"better in {d['folds_better']} folds, worse in {d['folds_worse']}; at FAR 1e-4 {only_mesh} genuine pairs "
          f"pass only with mesh, {only_blaze} only with blazeface (sign test p = {d['sign_test_p']:.2g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
