"""Run a scene through the pipeline and hub while remembering, in this test process only, everything the
pipeline computed about each face (embeddings, fused probes, aligned faces, crops), keyed by track, so the
files the appliance wrote can be searched for them afterwards."""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import sqlite_utils

import firmware.decide.decider as decider_module
from firmware.bench.scene_run import SceneResult, run_scene
from firmware.capture.frame import Frame
from firmware.capture.scene import Scene
from firmware.config import AppConfig
from firmware.embed.recognizer import Face, Recognizer
from firmware.eval.privacy_scan import blob_needles, embedding_needles
from firmware.match.score import ScoreCalibration
from firmware.pipeline.camera import FrameReport
from firmware.pipeline.imaging import probe_crop_jpeg
from firmware.pipeline.messages import PreviewFrame


class SpyRecognizer(Recognizer):
    """The real recognizer, remembering each embedding and aligned face it made this frame (test only)."""

    def __init__(self, base: Recognizer) -> None:
        super().__init__(base.detector, base.embedder, base.quality, base.loaded)
        self.frame_faces: list[tuple[tuple[float, ...], np.ndarray, np.ndarray]] = []

    def embed(self, face: Face) -> np.ndarray:
        embedding = super().embed(face)
        self.frame_faces.append((tuple(face.detection.box), embedding, face.aligned.copy()))
        return embedding


@dataclass
class Collected:
    """Needles per track id, alerted tracks and their probe crops, previews received, the run's figures."""

    needles: dict[int, dict[bytes, str]] = field(default_factory=lambda: collections.defaultdict(dict))
    alerted: dict[int, bytes] = field(default_factory=dict)
    previews: list[PreviewFrame] = field(default_factory=list)
    contexts: list[tuple[int, int, bytes, dict[int, tuple[float, ...]]]] = field(default_factory=list)
    """Each alert's context frame: (frame index, subject's track, JPEG, every track's box in that frame)."""
    embeddings: int = 0
    result: SceneResult | None = None

    def unmatched_needles(self) -> dict[bytes, str]:
        return {n: label for tid, ns in self.needles.items() if tid not in self.alerted
                for n, label in ns.items()}


class PreviewCollector:
    def __init__(self, into: list[PreviewFrame]) -> None:
        self.into = into

    def preview(self, frame: PreviewFrame) -> None:
        self.into.append(frame)


def run_collecting(cfg: AppConfig, recognizer: Recognizer, calibration: ScoreCalibration, scene: Scene,
                   db: sqlite_utils.Database, watchlisted: set[str], monkeypatch: pytest.MonkeyPatch,
                   leak: Callable[[int, np.ndarray], Any] | None = None) -> Collected:
    """Run `scene`; `leak(track_id, embedding)` is called for each embedding (to prove a leak is caught)."""
    spy = SpyRecognizer(recognizer)
    got = Collected()
    probes: list[np.ndarray] = []
    real_fuse = decider_module.fuse

    def spy_fuse(*args: Any, **kwargs: Any) -> np.ndarray:
        probe = real_fuse(*args, **kwargs)
        probes.append(probe)
        return probe

    monkeypatch.setattr(decider_module, "fuse", spy_fuse)

    def on_frame(frame: Frame, report: FrameReport) -> None:
        by_box = {tuple(box): tid for tid, box, _ in report.tracks}
        for box, embedding, aligned in spy.frame_faces:
            tid = by_box[box]
            got.embeddings += 1
            got.needles[tid].update(embedding_needles(embedding, f"track {tid} embedding"))
            got.needles[tid].update(blob_needles(aligned.tobytes(), f"track {tid} aligned face"))
            if leak is not None:
                leak(tid, embedding)
        for i, probe in enumerate(probes):
            tid = by_box[spy.frame_faces[i][0]] if i < len(spy.frame_faces) else -1
            got.needles[tid].update(embedding_needles(probe, f"track {tid} fused probe"))
        spy.frame_faces.clear()
        probes.clear()
        for tid, box, _ in report.tracks:
            crop = probe_crop_jpeg(frame.image, box, cfg.pipeline.probe_margin)
            got.needles[tid].update(blob_needles(crop, f"track {tid} crop frame {frame.index}"))
        for alert in report.alerts:
            got.alerted[alert.track_id] = alert.probe_jpeg
            got.contexts.append((frame.index, alert.track_id, alert.context_jpeg,
                                 {tid: tuple(box) for tid, box, _ in report.tracks}))

    got.result = run_scene(cfg, spy, scene, db, calibration, watchlisted=watchlisted,
                           preview_sink=PreviewCollector(got.previews), on_frame=on_frame)
    return got
