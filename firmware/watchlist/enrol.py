"""The enrolment boundary: what the importer asks of the recognition core for each reference image."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np


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
    `firmware.watchlist.enroller.RecognizerEnroller`: BlazeFace, quality gates, alignment, MobileFaceNet)."""

    def enrol(self, image_bgr: np.ndarray) -> EnrolResult:
        """`image_bgr`: HxWx3 uint8, upright. Returns an embedding or the reason there is none."""
        ...
