"""Enrolment: the boundary the watchlist import asks of the recognition core for each reference photo
(`Enroller`, `EnrolResult`, `Rejection`), and the real enroller, `RecognizerEnroller`.

The real enroller's rules, in order (each refusal maps to one `Rejection` the import report shows):

1. detect with a border (`pads`, fractions of the longer side tried in turn, `PORTRAIT_PADS` by default):
   watchlist photos are often tight crops whose face touches the edges, which BlazeFace misses without
   one; nothing found -> `no face`;
2. the subject is the most central, confident face (`Recognizer.main_face`); any other face whose size is
   at least `companion_ratio` of the subject's (0.5 by default) makes the photo ambiguous -> `several faces`.
   A much smaller face in the background (a passer-by behind the subject) is ignored: the subject is clear;
3. the subject's quality against `[quality]`: too small -> `face too small`, too blurred -> `too blurred`,
   turned too far from the camera -> `head turned` (a profile reference matches frontal probes badly);
4. otherwise the aligned face is embedded (unit-length float32).

Sizes are compared as `face_size_px` (eye-to-mouth scaled to the 112-px template), the measure the quality
gate uses, so a tilted head does not shrink its box and pass as "background".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np

from firmware.config import AppConfig
from firmware.embed.quality import face_size_px
from firmware.embed.recognizer import PORTRAIT_PADS, Recognizer

log = logging.getLogger(__name__)

DEFAULT_COMPANION_RATIO = 0.5


class Rejection(StrEnum):
    """Why a reference image gave no embedding; the value is what reports and the audit log show."""

    NO_FACE = "no face"
    SEVERAL_FACES = "several faces"
    FACE_TOO_SMALL = "face too small"
    TOO_BLURRED = "too blurred"
    HEAD_TURNED = "head turned"
    UNREADABLE_IMAGE = "unreadable image"


@dataclass(frozen=True)
class EnrolResult:
    """Either an embedding (1-D float32, L2-normalised) or a rejection with a human detail, never both."""

    embedding: np.ndarray | None = None
    rejection: Rejection | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if (self.embedding is None) == (self.rejection is None):
            raise ValueError("an EnrolResult holds exactly one of embedding and rejection")

    @classmethod
    def accepted(cls, embedding: np.ndarray) -> EnrolResult:
        return cls(embedding=embedding)

    @classmethod
    def rejected(cls, reason: Rejection, detail: str = "") -> EnrolResult:
        return cls(rejection=reason, detail=detail)


class Enroller(Protocol):
    """Detect, quality-check, align and embed the one face of a reference photo (the real one is
    `RecognizerEnroller` below: BlazeFace, quality gates, alignment, MobileFaceNet)."""

    def enrol(self, image_bgr: np.ndarray) -> EnrolResult:
        """`image_bgr`: HxWx3 uint8, upright. Returns an embedding or the reason there is none."""
        ...


class RecognizerEnroller:
    """Detect, quality-check, align and embed the one face of a reference photo with a loaded `Recognizer`.

    Build it once per import (models load in `from_config`, never per image).
    """

    def __init__(self, recognizer: Recognizer, *, pads: tuple[float, ...] = PORTRAIT_PADS,
                 companion_ratio: float = DEFAULT_COMPANION_RATIO) -> None:
        if not pads or not all(0.0 <= p <= 2.0 for p in pads):
            raise ValueError(f"pads {pads} must be fractions 0..2 of the image's longer side")
        if not 0.0 < companion_ratio <= 1.0:
            raise ValueError(f"companion_ratio {companion_ratio} is outside (0, 1]")
        self.recognizer = recognizer
        self.pads = pads
        self.companion_ratio = companion_ratio

    @classmethod
    def from_config(cls, cfg: AppConfig) -> RecognizerEnroller:
        """Load the configured detector and embedder once."""
        return cls(Recognizer.from_config(cfg))

    def enrol(self, image_bgr: np.ndarray) -> EnrolResult:
        """An embedding of the photo's one subject, or the rejection (see the module rules)."""
        dets = self.recognizer.main_face(image_bgr, self.pads)
        if not dets:
            return EnrolResult.rejected(Rejection.NO_FACE, "no face found by the detector")
        subject, others = dets[0], dets[1:]
        size = face_size_px(subject)
        companions = [d for d in others if face_size_px(d) >= self.companion_ratio * size]
        if companions:
            return EnrolResult.rejected(
                Rejection.SEVERAL_FACES,
                f"{len(companions) + 1} faces of comparable size (another at least "
                f"{self.companion_ratio:.0%} of the subject's {size:.0f} px): which one is listed is unclear")
        face = self.recognizer.face(image_bgr, subject)
        q, limits = face.quality, self.recognizer.quality
        if not q.ok:
            if q.size_px < limits.min_face_px:
                reason = Rejection.FACE_TOO_SMALL
            elif q.sharpness < limits.min_sharpness:
                reason = Rejection.TOO_BLURRED
            else:
                reason = Rejection.HEAD_TURNED
            return EnrolResult.rejected(reason, q.reason)
        return EnrolResult.accepted(self.recognizer.embed(face))


class LazyEnroller:
    """A `RecognizerEnroller` whose models load at the first photo, not before: an import refused on a cheap
    check (no open deployment, no such file, a bad signature or window) answers at once, without loading
    three models and their log lines first."""

    def __init__(self, cfg: AppConfig) -> None:
        self.cfg = cfg
        self._enroller: RecognizerEnroller | None = None

    @property
    def loaded(self) -> bool:
        """Whether the models have been loaded (the first photo was enrolled)."""
        return self._enroller is not None

    def model_files(self) -> dict[str, str]:
        """The loaded models' files and sha256 (`Recognizer.model_files`), recorded with the list; {} before
        the first photo."""
        return self._enroller.recognizer.model_files() if self._enroller is not None else {}

    def enrol(self, image_bgr: np.ndarray) -> EnrolResult:
        """As `RecognizerEnroller.enrol`, loading the models the first time."""
        if self._enroller is None:
            self._enroller = RecognizerEnroller.from_config(self.cfg)
        return self._enroller.enrol(image_bgr)
