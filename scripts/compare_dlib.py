#!/usr/bin/env python3
"""Side-by-side with the face_recognition library (dlib HOG detector + ResNet encoder), same machine, one run.

Install the peer with `make compare-deps` (the optional `[compare]` extra, then face_recognition itself
without its `dlib` requirement: `dlib-bin` provides the same `dlib` module prebuilt, which pip cannot know).

What is compared, on the same LFW View 2 pairs and folds:
- accuracy by the fold protocol of `lfr eval verify` (`firmware.eval.metrics.fold_accuracy`); ours on cosine
  similarity, the peer on minus the Euclidean distance it documents. Both use the same fallback for photos
  where no face is found: the mean landmark positions (ours) / mean box (peer) of the photos where one was.
- per-image detection time and per-face encoding time over the same photos (ours: main-face detection with
  the portrait padding ladder of `Recognizer.main_face`; align + embed with mirror. Peer: `face_locations`
  with its defaults, `face_encodings` with a known box, 5-point landmarks, one jitter: the library's defaults);
- end-to-end frames per second on one 1080p scene (LFW faces on a street frame, composed in memory): detect,
  encode every face found, search a watchlist of `WATCHLIST` subjects.
Speeds are quoted as ratios (peer time / our time) because the machine is shared and its load varies.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from firmware.bench.memory import RssSampler
from firmware.bench.stages import TILES_1080P, synthetic_watchlist
from firmware.bench.timing import Samples, ratio, timed
from firmware.capture.compose import compose, read_background
from firmware.cli.bench_stages import default_data
from firmware.config import load_config
from firmware.detect.detection import Detection
from firmware.embed.recognizer import PORTRAIT_PADS, Face, Recognizer
from firmware.errors import LfrError
from firmware.eval.embedding_set import embed_images, read_image
from firmware.eval.lfw import Pair, read_pairs
from firmware.eval.metrics import fold_accuracy, roc_curve, tar_at_far
from firmware.progress import progress

WATCHLIST = 1000
SCENE_FACES = 10


class TimedRecognizer(Recognizer):
    """Our recognizer, timing main-face detection per image and align + embed per face.

    Wrapping (instead of re-implementing the loop) keeps the protocol exactly `embed_images`'s, the one
    `lfr eval verify` uses.
    """

    def __init__(self, base: Recognizer) -> None:
        super().__init__(base.detector, base.embedder, base.quality, base.loaded)
        self.detect_s = Samples("detect")
        self.encode_s = Samples("encode")
        self._t_face = 0

    def main_face(self, image_bgr: np.ndarray, pads: tuple[float, ...] = PORTRAIT_PADS) -> list[Detection]:
        return timed(self.detect_s, super().main_face, image_bgr, pads)

    def face(self, image_bgr: np.ndarray, det: Detection) -> Face:
        self._t_face = time.perf_counter_ns()
        return super().face(image_bgr, det)

    def embed(self, face: Face) -> np.ndarray:
        out = super().embed(face)
        self.encode_s.add((time.perf_counter_ns() - self._t_face) * 1e-9)
        return out


def limit_pairs(pairs: list[Pair], limit: int | None) -> list[Pair]:
    """About `limit` pairs keeping every fold and the same/different balance (the first ones of each)."""
    if not limit or limit >= len(pairs):
        return pairs
    folds = sorted({p.fold for p in pairs})
    per = max(1, limit // (2 * len(folds)))
    out: list[Pair] = []
    for f in folds:
        for same in (True, False):
            out += [p for p in pairs if p.fold == f and p.same == same][:per]
    return out


def _central(boxes: list[tuple[int, int, int, int]], h: int, w: int) -> tuple[int, int, int, int]:
    """The face_recognition box (top, right, bottom, left) nearest the photo's centre."""
    return min(boxes, key=lambda b: (b[1] + b[3] - w) ** 2 + (b[0] + b[2] - h) ** 2)


def peer_embed(paths: Sequence[Path], upsample: int = 1) -> tuple[np.ndarray, int, Samples, Samples]:
    """128-d encodings of the main face of each photo, failed detections, and detection/encoding times."""
    import face_recognition

    det_s, enc_s = Samples("peer detect"), Samples("peer encode")
    boxes: dict[int, tuple[float, float, float, float]] = {}
    for i, path in enumerate(progress(paths, "peer detecting", len(paths))):
        rgb = cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        found = timed(det_s, face_recognition.face_locations, rgb, upsample, "hog")
        if found:
            t, r, b, lft = _central(found, h, w)
            boxes[i] = (t / h, r / w, b / h, lft / w)
    if not boxes:
        raise LfrError("the peer found no face in any image")
    mean = np.mean(np.array(list(boxes.values())), axis=0)
    enc = np.empty((len(paths), 128), np.float64)
    for i, path in enumerate(progress(paths, "peer encoding", len(paths))):
        rgb = cv2.cvtColor(read_image(path), cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        t, r, b, lft = boxes.get(i, tuple(mean))
        box = (round(t * h), round(r * w), round(b * h), round(lft * w))
        enc[i] = timed(enc_s, face_recognition.face_encodings, rgb, [box], 1, "small")[0]
    return enc, len(paths) - len(boxes), det_s, enc_s


def verification(scores: np.ndarray, pairs: list[Pair]) -> dict[str, Any]:
    """Fold accuracy, TAR at FAR 1e-3 on the file's impostor pairs, and the ROC points for the plot."""
    same = np.array([p.same for p in pairs])
    acc, std, per_fold = fold_accuracy(scores, same, np.array([p.fold for p in pairs]))
    tar, _ = tar_at_far(scores[same], scores[~same], 1e-3)
    far, tar_curve = roc_curve(scores[same], scores[~same])
    return {"accuracy": acc, "accuracy_std": std, "accuracy_per_fold": per_fold, "tar_at_far_1e-3_file": tar,
            "roc": {"far": far.tolist(), "tar": tar_curve.tolist()}}


def our_frame(rec: Recognizer, frame: np.ndarray, index: Any) -> int:
    """One 1080p frame through our core: tiled detection, quality, embed the good faces, search."""
    faces = 0
    for det in rec.detector.detect_tiled(frame, TILES_1080P):
        face = rec.face(frame, det)
        if face.quality.ok:
            index.search(rec.embed(face), 3)
            faces += 1
    return faces


def peer_frame(frame_rgb: np.ndarray, known: np.ndarray, upsample: int) -> int:
    """One frame through the peer, as its video examples do: locate, encode every face, compare to all."""
    import face_recognition

    locs = face_recognition.face_locations(frame_rgb, upsample, "hog")
    for enc in face_recognition.face_encodings(frame_rgb, locs, 1, "small"):
        face_recognition.face_distance(known, enc)
    return len(locs)


def fps(run: Any, frames: int) -> dict[str, Any]:
    """Frames per second of `run()` over `frames` calls (one untimed warm-up), faces found, RSS growth."""
    found = run()
    s = Samples("frame")
    with RssSampler() as rss:
        for _ in range(frames):
            found = timed(s, run)
    sm = s.summary()
    return {"fps": 1e3 / sm["mean_ms"], "frame_p50_ms": sm["p50_ms"], "frames": frames, "faces": found,
            **rss.as_dict()}


def compare(data: Path, *, pairs_limit: int | None = None, frames: int = 10, peer_frames: int = 3,
            precision: str | None = None, peer_upsample: int = 1) -> dict[str, Any]:
    """The whole comparison; returns every figure (see the module docstring)."""
    images_dir = data / "lfw" / "images"
    pairs = limit_pairs(read_pairs(data / "lfw" / "pairs.txt", images_dir), pairs_limit)
    paths = sorted({p.a for p in pairs} | {p.b for p in pairs})
    rec = TimedRecognizer(Recognizer.from_config(load_config(None), precision=precision))
    ours = embed_images(rec, paths)
    our_detect, our_encode = rec.detect_s.summary(), rec.encode_s.summary()
    idx = ours.index()
    our_scores = np.array([float(ours.embeddings[idx[p.a]] @ ours.embeddings[idx[p.b]]) for p in pairs])
    peer_enc, peer_failed, peer_det, peer_enc_s = peer_embed(ours.paths, peer_upsample)
    peer_scores = np.array([-float(np.linalg.norm(peer_enc[idx[p.a]] - peer_enc[idx[p.b]])) for p in pairs])

    faces = [paths[i] for i in np.linspace(0, len(paths) - 1, SCENE_FACES).astype(int)]
    scene = compose(read_background(data / "video" / "MOT17-13-SDP-raw.h265"), faces)
    index = synthetic_watchlist(WATCHLIST)
    rng = np.random.default_rng(0)
    known = rng.standard_normal((WATCHLIST, 128))
    known /= np.linalg.norm(known, axis=1, keepdims=True)
    rgb = cv2.cvtColor(scene.frame, cv2.COLOR_BGR2RGB)
    our_fps = fps(lambda: our_frame(rec, scene.frame, index), frames)
    peer_fps = fps(lambda: peer_frame(rgb, known, peer_upsample), peer_frames)

    r: dict[str, Any] = {
        "pairs": len(pairs), "folds": len({p.fold for p in pairs}), "images": len(paths),
        "ours": {**verification(our_scores, pairs), "failed_detections": len(ours.failed),
                 "detect_per_image": our_detect, "encode_per_face": our_encode,
                 "frame_1080p": our_fps, "backend": rec.health()},
        "peer": {**verification(peer_scores, pairs), "failed_detections": peer_failed,
                 "detect_per_image": peer_det.summary(), "encode_per_face": peer_enc_s.summary(),
                 "frame_1080p": peer_fps, "library": "face_recognition 1.3.0 (dlib HOG + ResNet, 5-point)",
                 "upsample": peer_upsample},
        "scene": {"size": [1920, 1080], "faces": SCENE_FACES, "watchlist": WATCHLIST,
                  "our_tiles": list(TILES_1080P)},
    }
    o, p = r["ours"], r["peer"]
    r["ratios"] = {
        "detect_speedup": ratio(p["detect_per_image"]["mean_ms"], o["detect_per_image"]["mean_ms"]),
        "encode_speedup": ratio(p["encode_per_face"]["mean_ms"], o["encode_per_face"]["mean_ms"]),
        "fps_speedup": ratio(o["frame_1080p"]["fps"], p["frame_1080p"]["fps"]),
        "accuracy_difference": o["accuracy"] - p["accuracy"],
    }
    return r


def format_report(r: dict[str, Any]) -> str:
    o, p, x = r["ours"], r["peer"], r["ratios"]

    def row(name: str, a: str, b: str, c: str) -> str:
        return f"{name:32} {a:>16} {b:>16} {c:>10}"

    return "\n".join([
        f"{r['pairs']} LFW pairs in {r['folds']} folds, {r['images']} images; ours {o['backend']}",
        row("", "ours", "face_recognition", "ratio"),
        row("LFW accuracy (fold protocol)", f"{o['accuracy'] * 100:.2f} ± {o['accuracy_std'] * 100:.2f} %",
            f"{p['accuracy'] * 100:.2f} ± {p['accuracy_std'] * 100:.2f} %",
            f"{x['accuracy_difference'] * 100:+.2f} pt"),
        row("TAR at FAR 1e-3 (file pairs)", f"{o['tar_at_far_1e-3_file'] * 100:.2f} %",
            f"{p['tar_at_far_1e-3_file'] * 100:.2f} %", ""),
        row("failed detections", str(o["failed_detections"]), str(p["failed_detections"]), ""),
        row("detection per image (mean ms)", f"{o['detect_per_image']['mean_ms']:.2f}",
            f"{p['detect_per_image']['mean_ms']:.2f}", f"{x['detect_speedup']:.1f}×"),
        row("encoding per face (mean ms)", f"{o['encode_per_face']['mean_ms']:.2f}",
            f"{p['encode_per_face']['mean_ms']:.2f}", f"{x['encode_speedup']:.1f}×"),
        row("1080p frames per second", f"{o['frame_1080p']['fps']:.2f}", f"{p['frame_1080p']['fps']:.3f}",
            f"{x['fps_speedup']:.1f}×"),
        row("faces found in the 1080p scene", f"{o['frame_1080p']['faces']}/{r['scene']['faces']}",
            f"{p['frame_1080p']['faces']}/{r['scene']['faces']}", ""),
        "ratio = how many times faster ours is (peer time / our time, same run); accuracy difference in "
        "points.",
        "LFW is skewed (mostly male, few children, older people or people of colour): this compares models, "
        "not street performance.",
    ])


def plot_roc(r: dict[str, Any], out: Path) -> None:
    """ROC of both on the pairs file's own impostor pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finest = 1.0 / (r["pairs"] // 2)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for key, label in (("ours", "ours (BlazeFace + MobileFaceNet)"), ("peer", "face_recognition (dlib)")):
        roc = r[key]["roc"]
        ax.semilogx(np.clip(roc["far"], finest / 2, 1), roc["tar"],
                    label=f"{label}, acc {r[key]['accuracy'] * 100:.2f} %")
    ax.axvline(finest, color="grey", linestyle=":", label="1 / impostor pairs (left of it: none accepted)")
    ax.set(xlabel="false accept rate (impostor pairs of the file)", ylabel="true accept rate",
           title=f"LFW, {r['pairs']} pairs, {r['folds']} folds", ylim=(0.8, 1.0))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=default_data(),
                    help="shared data folder (default: $LFR_TEST_DATA or ../shared/data beside the repository)")
    ap.add_argument("--pairs-limit", type=int, help="about this many pairs (all folds), quick run")
    ap.add_argument("--frames", type=int, default=20, help="timed 1080p frames for ours (default 20)")
    ap.add_argument("--peer-frames", type=int, default=3, help="timed 1080p frames for the peer (default 3)")
    ap.add_argument("--precision", choices=("int8", "float"), help="our models (default: config, auto)")
    ap.add_argument("--peer-upsample", type=int, default=1, help="face_locations upsampling (default 1)")
    ap.add_argument("--plot", type=Path, help="write the ROC of both to this PNG")
    ap.add_argument("--json", action="store_true", help="print one JSON object (ROC points left out)")
    args = ap.parse_args(argv)
    try:
        import face_recognition  # noqa: F401
    except ImportError:
        print("compare_dlib: face_recognition is not installed; run `make compare-deps`", file=sys.stderr)
        return 2
    try:
        r = compare(args.data, pairs_limit=args.pairs_limit, frames=args.frames, peer_frames=args.peer_frames,
                    precision=args.precision, peer_upsample=args.peer_upsample)
    except LfrError as exc:
        print(f"compare_dlib: error: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        plot_roc(r, args.plot)
    if args.json:
        for side in ("ours", "peer"):
            r[side].pop("roc")
        json.dump(r, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(format_report(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
