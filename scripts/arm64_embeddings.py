#!/usr/bin/env python3
"""Embeddings of a list of face photos on this machine, and the comparison of two machines' embeddings.

Used by scripts/arm64_check.sh on both sides (x86 natively, aarch64 under qemu-aarch64-static):

  arm64_embeddings.py embed --list FILES.txt --out X.npz [--write-aligned A.npz | --aligned A.npz]
  arm64_embeddings.py compare X86.npz ARM.npz [--json]

`embed` writes, per precision (int8, float):
- `embedder_<p>`: the embedder alone, on aligned 112x112 crops; the x86 run cuts them (`--write-aligned`), the
  aarch64 run reads the same crops (`--aligned`), so only the embedder's arithmetic differs;
- `pipeline_<p>`: detect, mesh-align and embed from the JPEG with every model in that precision, so the
  detector's and the mesh's arithmetic count too.
- `shift_<p>` (reference machine only): the pipeline on the photo moved by one pixel, the pipeline entries' bound.
`compare` prints the mean and minimum cosine per entry and exits 1 when one is below its tolerance.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if (REPO / "firmware").is_dir():
    sys.path.insert(0, str(REPO))

# Minimum cosine per face between the machines. The embedder alone (same aligned crops): float32 with another
# instruction set's fused multiply-adds and summation order differs in the 6th-7th digit, hence 0.9999; int8 may
# round a requantised activation one step differently on NEON than on AVX, and a few such steps in 98 ops move an
# embedding by about 1e-4 of cosine, hence 0.999 (at the calibration's slope of 27 per unit cosine that moves a
# score's logit by at most 0.027). From the photo on (`pipeline_*`), any last-bit difference in the float maths
# around the models (box decoding, the ROI and alignment transforms) can move a warped pixel by one grey level,
# which an int8 detector or mesh may turn into a keypoint moved by a fraction of a pixel: the bound there is what
# the same pipeline does on x86 to the same photo shifted by one pixel (`shift_*`, the smallest cosine over the
# faces): the machines must not differ by more than one pixel of camera shake does.
TOLERANCE = {"embedder_int8": 0.999, "embedder_float": 0.9999}
PIPELINE = ("pipeline_int8", "pipeline_float")


def shifted(img: np.ndarray) -> np.ndarray:
    """The photo moved one pixel right and down (edge pixels repeated)."""
    return np.ascontiguousarray(np.pad(img, ((1, 0), (1, 0), (0, 0)), mode="edge")[:-1, :-1])


def embed(list_file: Path, out: Path, aligned_in: Path | None, aligned_out: Path | None) -> None:
    import cv2

    from firmware.accel.runtime import Model
    from firmware.config import AppConfig, ModelsConfig
    from firmware.embed.embedder import FaceEmbedder
    from firmware.embed.recognizer import Recognizer

    paths = [Path(line.strip()) for line in list_file.read_text().splitlines() if line.strip()]
    cfg = AppConfig(models=ModelsConfig(accelerator="cpu", threads=1))
    results: dict[str, np.ndarray] = {}
    crops: dict[str, np.ndarray] = {}
    missing = np.full(192, np.nan, np.float32)
    for precision in ("int8", "float"):
        rec = Recognizer.from_config(cfg, precision=precision)
        vectors, moved = [], []
        for path in paths:
            img = cv2.imread(str(path))
            dets = rec.main_face(img) if img is not None else []
            if img is None or not dets:
                vectors.append(missing)
                moved.append(missing)
                continue
            face = rec.face(img, dets[0])
            if precision == "int8":
                crops[path.name] = face.aligned
            vectors.append(rec.embed(face))
            if aligned_in is None:  # the reference machine also measures the one-pixel baseline
                other = rec.main_face(shifted(img))
                moved.append(rec.embed(rec.face(shifted(img), other[0])) if other else missing)
        results[f"pipeline_{precision}"] = np.stack(vectors)
        if aligned_in is None:
            results[f"shift_{precision}"] = np.stack(moved)
        print(f"pipeline {precision}: {len(paths)} photos", file=sys.stderr)
    if aligned_in is not None:
        with np.load(aligned_in) as data:
            crops = {k: data[k] for k in data.files}
    elif aligned_out is not None:
        np.savez(aligned_out, **crops)
    models_dir = Path(cfg.models.dir)
    for precision in ("int8", "float"):
        embedder = FaceEmbedder(Model(models_dir / f"face_embedder_{precision}.tflite", threads=1))
        results[f"embedder_{precision}"] = np.stack([
            embedder.embed(crops[p.name]) if p.name in crops else np.full(192, np.nan, np.float32) for p in paths])
    np.savez(out, names=np.array([p.name for p in paths]), **results)


def compare(a_file: Path, b_file: Path) -> dict[str, dict[str, float]]:
    """Per entry: faces compared, mean and minimum cosine, and the tolerance."""
    with np.load(a_file) as a, np.load(b_file) as b:
        if list(a["names"]) != list(b["names"]):
            raise SystemExit("the two files embed different photo lists")
        def cosines(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, int]:
            both = ~(np.isnan(x).any(axis=1) | np.isnan(y).any(axis=1))
            return np.sum(x[both] * y[both], axis=1), int((~both).sum())

        tolerance = dict(TOLERANCE)
        for key in PIPELINE:
            baseline, _ = cosines(a[key], a[key.replace("pipeline", "shift")])
            tolerance[key] = float(baseline.min())
        table = {}
        for key, bound in tolerance.items():
            cos, missing = cosines(a[key], b[key])
            table[key] = {"faces": len(cos), "missing": missing, "mean": float(cos.mean()), "min": float(cos.min()),
                          "tolerance": round(bound, 6)}
    return table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed")
    e.add_argument("--list", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--aligned", type=Path)
    e.add_argument("--write-aligned", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("x86", type=Path)
    c.add_argument("arm", type=Path)
    c.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.cmd == "embed":
        embed(args.list, args.out, args.aligned, args.write_aligned)
        return 0
    table = compare(args.x86, args.arm)
    if args.json:
        print(json.dumps(table, indent=2))
    else:
        print(f"{'model and precision':<20} {'faces':>5} {'mean cosine':>12} {'min cosine':>12} {'tolerance':>10}")
        for key, row in table.items():
            flag = "" if row["min"] >= row["tolerance"] else "  BELOW TOLERANCE"
            print(f"{key:<20} {row['faces']:>5} {row['mean']:>12.7f} {row['min']:>12.7f} {row['tolerance']:>10}"
                  f"{flag}")
    return 0 if all(r["min"] >= r["tolerance"] and r["missing"] == 0 for r in table.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
