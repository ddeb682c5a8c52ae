"""Detect, align, assess and embed faces with the models chosen by the configuration.

One `Recognizer` per process: it loads the detector and embedder once (never per frame) and is shared by the
live pipeline, watchlist enrolment, evaluation and benchmarks, so all of them measure the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware.accel.modelfiles import LoadedModel, PrecisionChoices, load_role, sha256_file
from firmware.config import AppConfig, QualityConfig
from firmware.detect.blazeface import FaceDetector
from firmware.detect.detection import Detection
from firmware.embed.align import align_face
from firmware.embed.embedder import FaceEmbedder
from firmware.embed.mesh_landmarks import MeshLandmarker
from firmware.embed.quality import Quality, assess, best_possible

# The per-machine CPU precision choices, in the state directory (see `PrecisionChoices`).
PRECISION_FILE = "model-precision.json"
# Padding (fraction of the longer side) tried in turn on portrait photos; see `Recognizer.main_face`.
PORTRAIT_PADS = (0.25, 0.75)


@dataclass(frozen=True, slots=True)
class Face:
    """A detected face with its aligned 112×112 BGR crop and its quality verdict."""

    detection: Detection
    aligned: np.ndarray
    quality: Quality


class Recognizer:
    """The recognition core: `detect` → `face` (align + quality) → `embed`.

    With a `landmarker`, faces are aligned on its keypoints instead of the detector's (see docs/recognition.md).
    """

    def __init__(self, detector: FaceDetector, embedder: FaceEmbedder, quality: QualityConfig,
                 loaded: dict[str, LoadedModel] | None = None, landmarker: MeshLandmarker | None = None) -> None:
        self.detector = detector
        self.embedder = embedder
        self.quality = quality
        self.loaded = loaded or {}
        self.landmarker = landmarker

    @classmethod
    def from_config(cls, cfg: AppConfig, *, precision: str | None = None) -> Recognizer:
        """Load the models as configured (the face mesh when `embed.landmarks = "mesh"`); `precision` overrides
        `models.precision` (benchmarks, eval)."""
        m = cfg.models
        state = Path(cfg.paths.state_dir)
        # Stored where the appliance keeps its state (install.sh and systemd create it); a development run
        # without that folder measures at each start instead of creating it.
        choices = PrecisionChoices(state / PRECISION_FILE) if state.is_dir() else None
        kwargs = dict(accelerator=m.accelerator, device=m.edgetpu_device, precision=precision or m.precision,
                      threads=m.threads, choices=choices)
        det = load_role(Path(m.dir), "face_detector", **kwargs)  # type: ignore[arg-type]
        emb = load_role(Path(m.dir), "face_embedder", **kwargs)  # type: ignore[arg-type]
        detector = FaceDetector(det.model, min_score=cfg.detect.min_score, nms_iou=cfg.detect.nms_iou,
                                min_face_px=cfg.detect.min_face_px)
        loaded = {"face_detector": det, "face_embedder": emb}
        landmarker = None
        if cfg.embed.landmarks == "mesh":
            loaded["face_landmarks"] = load_role(Path(m.dir), "face_landmarks", **kwargs)  # type: ignore[arg-type]
            landmarker = MeshLandmarker(loaded["face_landmarks"].model)
        return cls(detector, FaceEmbedder(emb.model), cfg.quality, loaded, landmarker)

    def model_files(self) -> dict[str, str]:
        """Each loaded role's file and sha256 ("face_embedder_int8.tflite sha256:…"): what a watchlist records
        at enrolment, so that it is never searched with embeddings of other files."""
        return {role: f"{lm.model.path.name} sha256:{sha256_file(lm.model.path)}"
                for role, lm in sorted(self.loaded.items())}

    def health(self) -> dict[str, str]:
        """Which back-end and precision each model runs on, for the health state."""
        return {role: f"{lm.backend}/{lm.precision}: {lm.note}" for role, lm in self.loaded.items()}

    def detect(self, image_bgr: np.ndarray, pad: float = 0.0) -> list[Detection]:
        return self.detector.detect(image_bgr, pad)

    def face(self, image_bgr: np.ndarray, det: Detection) -> Face:
        """Align `det` out of the frame and measure its quality (no embedding yet: that is the costly step).

        The quality gate reads the detector's keypoints, on which its limits were set: the mesh's compress a
        turned head's yaw (a near profile measures 0.39 instead of 0.86).
        """
        keypoints = det.keypoints if self.landmarker is None else self.landmarker.refine(image_bgr, det).keypoints
        aligned = align_face(image_bgr, keypoints)
        q = self.quality
        return Face(det, aligned, assess(det, aligned, min_face_px=q.min_face_px,
                                         min_sharpness=q.min_sharpness, max_yaw=q.max_yaw))

    def best_possible(self, det: Detection) -> float | None:
        """The best quality score `det` could reach once aligned, or None if it cannot pass the gate; costs
        no alignment, so a tracked face that cannot improve on its track's shots is never meshed."""
        q = self.quality
        return best_possible(det, min_face_px=q.min_face_px, max_yaw=q.max_yaw)

    def embed(self, face: Face) -> np.ndarray:
        return self.embedder.embed(face.aligned)

    def main_face(self, image_bgr: np.ndarray, pads: tuple[float, ...] = PORTRAIT_PADS) -> list[Detection]:
        """Faces of a portrait photo, the most central and confident first (LFW, watchlist photos).

        Tries each padding in turn until a face is found: BlazeFace misses a face that fills its input, and
        watchlist photos are often cropped to the face (a crop to the face box needs about 0.5).
        """
        dets: list[Detection] = []
        for pad in pads:
            dets = self.detect(image_bgr, pad)
            if dets:
                break
        h, w = image_bgr.shape[:2]
        centre = np.array([w / 2.0, h / 2.0])

        def rank(d: Detection) -> float:
            off = float(np.linalg.norm(np.array(d.center) - centre)) / max(h, w)
            return d.score - off

        return sorted(dets, key=rank, reverse=True)
