"""LFW faces pasted onto a real background frame, in memory: the one place test and benchmark scenes are made.

Two users: the walking scenes of `firmware.capture.scene` (tests, demo, acceptance runs) and the still
scenes of the benchmarks (`compose`: many faces at once on a 720p or 1080p street frame, `PanningStill`: the
same still seen by a slowly panning camera so the tracker follows real motion). Each face is the square
centre of an LFW photo cut out as an oval with a feathered edge (a hard rectangle would give the detector an
easy border to lock on to). Nothing is written to disk: the faces are third-party data and only live in the
process that composes them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from firmware.errors import DataError

Box = tuple[float, float, float, float]
FULL_HD = (1920, 1080)
LFW_FACE_CROP = (40, 210)  # rows/cols of a 250×250 LFW photo that hold the face with some hair and chin
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PAN_PX = 24  # how far a `PanningStill` moves its faces either side, in pixels


def _video_frame(path: Path, index: int) -> np.ndarray | None:
    cap = cv2.VideoCapture(str(path))
    try:
        image = None
        for _ in range(index + 1):
            ok, image = cap.read()
            if not ok:
                return None
        return image
    finally:
        cap.release()


def read_background(path: Path, size: tuple[int, int] = FULL_HD, index: int = 0) -> np.ndarray:
    """Frame `index` of a video (or an image) resized to `size` (width, height), BGR uint8."""
    is_image = path.suffix.lower() in IMAGE_SUFFIXES
    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if is_image else _video_frame(path, index)
    if image is None:
        raise DataError(f"cannot read {'the image' if is_image else f'frame {index} of'} {path} as a background "
                        "(missing, unreadable or too short)")
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def blur_faces(image: np.ndarray, detect: Callable[[np.ndarray], Sequence[Box]]) -> np.ndarray:
    """A copy of `image` with every face `detect` finds blurred beyond recognition (real backgrounds)."""
    out = image.copy()
    h, w = out.shape[:2]
    for x1, y1, x2, y2 in detect(out):
        m = 0.3 * (x2 - x1)
        a, b = max(0, int(x1 - m)), max(0, int(y1 - m))
        c, d = min(w, int(x2 + m)), min(h, int(y2 + m))
        if c > a and d > b:
            out[b:d, a:c] = cv2.GaussianBlur(out[b:d, a:c], (0, 0), sigmaX=max(4.0, (c - a) / 4))
    return out


@functools.lru_cache(maxsize=128)
def face_patch(photo: Path) -> np.ndarray:
    """The square face centre (`LFW_FACE_CROP`) of an LFW-shaped 250×250 photo, BGR uint8."""
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"cannot read face image {photo}")
    lo, hi = LFW_FACE_CROP
    return image[lo:hi, lo:hi].copy()


@functools.lru_cache(maxsize=8)
def oval_mask(size: int) -> np.ndarray:
    """A soft-edged ellipse (size×size×1 float32 0..1) so a pasted photo blends into the background."""
    m = np.zeros((size, size), np.float32)
    cv2.ellipse(m, (size // 2, size // 2), (int(size * 0.46), int(size * 0.49)), 0, 0, 360, 1.0, -1)
    k = max(3, (size // 12) | 1)
    return cv2.GaussianBlur(m, (k, k), 0)[..., None]


def paste_face(image: np.ndarray, photo: Path, x: int, y: int, size: int) -> None:
    """Blend the face of `photo`, `size` pixels square, into `image` (in place) with its top left at (x, y)."""
    patch = cv2.resize(face_patch(photo), (size, size), interpolation=cv2.INTER_AREA)
    region = image[y:y + size, x:x + size].astype(np.float32)
    m = oval_mask(size)
    image[y:y + size, x:x + size] = (patch * m + region * (1.0 - m)).astype(np.uint8)


@dataclass(frozen=True)
class Still:
    """A composed BGR frame, the LFW photos used, and where each face was pasted (x1, y1, x2, y2) in pixels."""

    frame: np.ndarray
    sources: tuple[Path, ...]
    boxes: tuple[tuple[int, int, int, int], ...]


def compose(background: np.ndarray, faces: Sequence[Path], *, face_px: int = 220, margin_px: int = 0,
            seed: int = 0) -> Still:
    """Paste `faces` (LFW photos) onto a copy of `background`, `face_px` pixels square, on a jittered grid so
    they never overlap and stay `margin_px` from the frame's edges; DataError when that many do not fit."""
    h, w = background.shape[:2]
    gap, m = 20, margin_px
    cols, rows = max(1, (w - 2 * m) // (face_px + gap)), max(1, (h - 2 * m) // (face_px + gap))
    if len(faces) > cols * rows or min(w, h) < face_px + 2 * m:
        raise DataError(f"{len(faces)} faces of {face_px} px do not fit in a {w}×{h} frame "
                        f"(at most {cols * rows} with a {m} px margin)")
    rng = np.random.default_rng(seed)
    cells = rng.permutation(cols * rows)[:len(faces)]
    cw, ch = (w - 2 * m) // cols, (h - 2 * m) // rows
    frame = background.copy()
    boxes = []
    for path, cell in zip(faces, cells, strict=True):
        r, c = divmod(int(cell), cols)
        x = m + c * cw + int(rng.integers(0, max(1, cw - face_px)))
        y = m + r * ch + int(rng.integers(0, max(1, ch - face_px)))
        paste_face(frame, path, x, y, face_px)
        boxes.append((x, y, x + face_px, y + face_px))
    return Still(frame, tuple(faces), tuple(boxes))


class PanningStill:
    """`n_frames` views of one or more stills as a camera panning slowly back and forth sees them.

    Every face moves `step_px` pixels a frame across and half that down, up to `amplitude_px` either side of
    where it was pasted (a triangle wave), so the tracker follows real motion; compose the stills with
    `margin_px >= amplitude_px` so no face leaves the view. With several stills and `hold_frames` > 0, the
    view shows each for `hold_frames` frames in turn (other people, elsewhere: every track ends and new ones
    start, as when a crowd moves on). Each still is padded once with its edge pixels (no face is mirrored
    in); each view is one copy out of it, nothing is pasted again.
    """

    def __init__(self, stills: Sequence[Still], n_frames: int, *, hold_frames: int = 0,
                 amplitude_px: int = PAN_PX, step_px: int = 2) -> None:
        if not stills or n_frames < 1 or hold_frames < 0 or amplitude_px < 0 or step_px < 0:
            raise ValueError("need a still, n_frames >= 1, and hold_frames, amplitude_px and step_px >= 0")
        for still in stills:
            h, w = still.frame.shape[:2]
            if any(min(x1, y1, w - x2, h - y2) < amplitude_px for x1, y1, x2, y2 in still.boxes):
                raise ValueError(f"a face lies closer than {amplitude_px} px to the edge and would leave the view")
        self.stills = tuple(stills)
        self.n_frames = n_frames
        self.hold_frames = hold_frames
        self.amplitude_px = amplitude_px
        self.step_px = step_px
        a = amplitude_px
        self._padded = [cv2.copyMakeBorder(s.frame, a, a, a, a, cv2.BORDER_REPLICATE) for s in self.stills]

    def __len__(self) -> int:
        return self.n_frames

    @property
    def size(self) -> tuple[int, int]:
        return self.stills[0].frame.shape[1], self.stills[0].frame.shape[0]

    def still_index(self, index: int) -> int:
        """Which still frame `index` shows."""
        return (index // self.hold_frames) % len(self.stills) if self.hold_frames else 0

    def offset(self, index: int) -> tuple[int, int]:
        """How far the faces of frame `index` are from where they were pasted (dx, dy), in pixels."""
        a = self.amplitude_px
        if a == 0 or self.step_px == 0:
            return 0, 0
        period = 4 * a
        t = (index * self.step_px) % period
        dx = t if t <= a else (2 * a - t if t <= 3 * a else t - period)
        return dx, dx // 2

    def boxes(self, index: int) -> list[tuple[int, int, int, int]]:
        """Where the faces are in frame `index` (x1, y1, x2, y2)."""
        dx, dy = self.offset(index)
        return [(x1 + dx, y1 + dy, x2 + dx, y2 + dy)
                for x1, y1, x2, y2 in self.stills[self.still_index(index)].boxes]

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (BGR uint8): the view whose faces sit at `boxes(index)`."""
        dx, dy = self.offset(index)
        w, h = self.size
        a = self.amplitude_px
        return self._padded[self.still_index(index)][a - dy:a - dy + h, a - dx:a - dx + w].copy()
