"""`lfr bench stages`: latency of each stage of the recognition core, int8 and float models in one run.

Both model sets are loaded side by side and each input goes through the int8 stage and then the float stage
before the next input, so drift in the machine's load (it is shared) hits both alike. Two inputs:
- LFW photos (250×250 JPEG, one face): decode, letterbox, detect, align, quality, embed, match;
- a 1080p scene of LFW faces on a street frame: decode, letterbox, detect (whole frame, and on the 3×2 tiles
  a 1080p frame needs for faces this size), track, and align + quality + embed + match per face found.
The JPEG bytes are read before timing, so disk speed is not in `decode`. `detect` is the whole call
(letterbox, inference, anchor decoding, NMS); `letterbox` is shown on its own as part of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from firmware.bench.memory import RssSampler
from firmware.bench.timing import Samples, ratio, timed
from firmware.capture.compose import Still
from firmware.config import AppConfig
from firmware.detect.blazeface import letterbox
from firmware.embed.align import align_face
from firmware.embed.quality import assess
from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError
from firmware.match.score import ScoreCalibration
from firmware.match.watchlist_index import WatchlistIndex
from firmware.progress import progress
from firmware.track.tracker import Tracker

PRECISIONS = ("int8", "float")
TILES_1080P = (3, 2)
LFW_PAD = 0.25
# Timing does not depend on the score mapping; a fixed one keeps the benchmark independent of calibration.
BENCH_CALIBRATION = ScoreCalibration(slope=10.0, cosine_at_threshold=0.4)


def synthetic_watchlist(n: int, dim: int = 192, seed: int = 0) -> WatchlistIndex:
    """An index of `n` random unit vectors: search time depends on the size, not on who is in it."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, dim), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return WatchlistIndex([f"s{i}" for i in range(n)], emb, BENCH_CALIBRATION)


class _StageSet:
    """The samples of one precision, one per stage name."""

    def __init__(self) -> None:
        self.samples: dict[str, Samples] = {}

    def __getitem__(self, name: str) -> Samples:
        return self.samples.setdefault(name, Samples(name))

    def summary(self) -> dict[str, dict[str, float]]:
        return {k: s.summary() for k, s in self.samples.items()}


def _per_face(rec: Recognizer, img: np.ndarray, det: Any, index: WatchlistIndex, st: _StageSet,
              prefix: str) -> None:
    q = rec.quality
    aligned = timed(st[f"{prefix}align"], align_face, img, det.keypoints)
    timed(st[f"{prefix}quality"], lambda: assess(det, aligned, min_face_px=q.min_face_px,
                                                 min_sharpness=q.min_sharpness, max_yaw=q.max_yaw))
    emb = timed(st[f"{prefix}embed"], rec.embedder.embed, aligned)
    timed(st[f"{prefix}match"], index.search, emb, 3)


def _lfw_image(rec: Recognizer, data: bytes, index: WatchlistIndex, st: _StageSet) -> None:
    buf = np.frombuffer(data, np.uint8)
    img = timed(st["lfw.decode"], cv2.imdecode, buf, cv2.IMREAD_COLOR)
    timed(st["lfw.letterbox"], letterbox, img, LFW_PAD)
    dets = timed(st["lfw.detect"], rec.detect, img, LFW_PAD)
    if dets:
        _per_face(rec, img, dets[0], index, st, "lfw.")


def _frame(rec: Recognizer, jpeg: bytes, index: WatchlistIndex, tracker: Tracker, st: _StageSet) -> int:
    img = timed(st["1080p.decode"], cv2.imdecode, np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    timed(st["1080p.letterbox"], letterbox, img)
    timed(st["1080p.detect_whole"], rec.detect, img)
    dets = timed(st["1080p.detect_tiled"], rec.detector.detect_tiled, img, TILES_1080P)
    timed(st["1080p.track"], tracker.update, dets)
    for det in dets:
        _per_face(rec, img, det, index, st, "1080p.face_")
    return len(dets)


def run_stages(cfg: AppConfig, lfw_images: Sequence[Path], scene: Still, *, frame_runs: int = 20,
               watchlist_size: int = 10_000, warmup: int = 3) -> dict[str, Any]:
    """Per-stage p50/p99 for each precision and the int8/float ratio of p50; see the module docstring."""
    if not lfw_images:
        raise DataError("no LFW images to benchmark on")
    recs = {p: Recognizer.from_config(cfg, precision=p) for p in PRECISIONS}
    index = synthetic_watchlist(watchlist_size)
    stages = {p: _StageSet() for p in PRECISIONS}
    warm = {p: _StageSet() for p in PRECISIONS}
    blobs = [Path(p).read_bytes() for p in lfw_images]
    ok, enc = cv2.imencode(".jpg", scene.frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise DataError("could not JPEG-encode the 1080p scene")
    jpeg = enc.tobytes()
    trackers = {p: Tracker() for p in PRECISIONS}
    for data in blobs[:warmup]:
        for p in PRECISIONS:
            _lfw_image(recs[p], data, index, warm[p])
    for data in progress(blobs, "LFW images", len(blobs)):
        for p in PRECISIONS:
            _lfw_image(recs[p], data, index, stages[p])
    faces = {p: 0 for p in PRECISIONS}
    for _ in range(warmup):
        for p in PRECISIONS:
            _frame(recs[p], jpeg, index, trackers[p], warm[p])
    with RssSampler() as rss:
        for _ in progress(range(frame_runs), "1080p frames", frame_runs):
            for p in PRECISIONS:
                faces[p] = _frame(recs[p], jpeg, index, trackers[p], stages[p])
    result: dict[str, Any] = {
        "lfw_images": len(blobs), "frame_runs": frame_runs, "frame_size": list(scene.frame.shape[1::-1]),
        "faces_in_scene": len(scene.boxes), "faces_found": faces, "tiles_1080p": list(TILES_1080P),
        "watchlist_size": watchlist_size, "threads": cfg.models.threads,
        "backend": {p: recs[p].health() for p in PRECISIONS},
        "memory_1080p_both_model_sets": rss.as_dict(),
        "stages": {p: stages[p].summary() for p in PRECISIONS},
    }
    result["ratio_int8_over_float_p50"] = {
        k: ratio(v["p50_ms"], result["stages"]["float"][k]["p50_ms"])
        for k, v in result["stages"]["int8"].items() if k in result["stages"]["float"]}
    return result


def format_stages(r: dict[str, Any]) -> str:
    """A table: stage, int8 p50/p99, float p50/p99, ratio of p50s."""
    w, h = r["frame_size"]
    lines = [f"{r['lfw_images']} LFW images, {r['frame_runs']} runs of a {w}×{h} scene "
             f"with {r['faces_in_scene']} faces (found: {r['faces_found']}), watchlist "
             f"{r['watchlist_size']}, {r['threads']} threads",
             f"{'stage':24} {'int8 p50':>9} {'p99':>8} {'float p50':>10} {'p99':>8} {'int8/float':>10}"]
    i8, fl = r["stages"]["int8"], r["stages"]["float"]
    for k in i8:
        a, b = i8[k], fl.get(k, {"p50_ms": float("nan"), "p99_ms": float("nan")})
        lines.append(f"{k:24} {a['p50_ms']:9.3f} {a['p99_ms']:8.3f} {b['p50_ms']:10.3f} {b['p99_ms']:8.3f} "
                     f"{r['ratio_int8_over_float_p50'].get(k, float('nan')):10.2f}")
    mem = r["memory_1080p_both_model_sets"]
    lines.append("times in ms; int8/float < 1 means int8 is faster")
    lines.append(f"RSS during the 1080p runs (both model sets loaded): peak {mem['rss_peak_mib']:.0f} MiB, "
                 f"process peak {mem['process_peak_rss_mib']:.0f} MiB")
    return "\n".join(lines)
