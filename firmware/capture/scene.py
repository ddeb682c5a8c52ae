"""Replay scenes of people walking past, composed from LFW photos on a real background (tests, demo, bench).

The frame (640×360 by default: BlazeFace letterboxes to 192 pixels, so a face must fill about a seventh of the
frame width to be found, as on the camera's lores stream) is split into `lanes` side-by-side columns.
Each person walks down one lane towards the camera
over `frames_per_walker` frames: the face moves down and grows from `face_px[0]` to `face_px[1]` pixels (a
growth large enough that a newcomer never looks like the previous person's last face to the tracker), and the
photo changes part way (2–3 different photos of the same person when LFW has them). Walkers enter the lanes
in turn, `gap_frames` apart in the same lane. Frames are rendered on demand from the background and the
photos (pasted by `firmware.capture.compose`), in memory only; the ground truth says who is where in which
frame.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from firmware.capture.compose import Box, paste_face
from firmware.capture.frame import Frame
from firmware.capture.source import SourceBase
from firmware.errors import DataError


@dataclass(frozen=True)
class Person:
    """An LFW identity and its photos (sorted paths)."""

    name: str
    photos: tuple[Path, ...]


@dataclass(frozen=True)
class Walker:
    """One person's pass: lane, first frame, photos shown in order."""

    person: str
    lane: int
    first_frame: int
    photos: tuple[Path, ...]


@dataclass(frozen=True)
class Appearance:
    """Ground truth: `person` is visible in `frame` with the pasted face square at `box` (frame pixels)."""

    frame: int
    person: str
    box: Box
    photo: Path


def lfw_people(lfw_dir: Path, *, min_photos: int = 1) -> list[Person]:
    """Every LFW identity with at least `min_photos` photos, sorted by name (deterministic)."""
    images = lfw_dir / "images"
    if not images.is_dir():
        raise DataError(f"no LFW images folder at {images}")
    people = []
    for d in sorted(images.iterdir()):
        photos = tuple(sorted(d.glob("*.jpg")))
        if len(photos) >= min_photos:
            people.append(Person(d.name, photos))
    return people


class Scene:
    """A scene of walkers; `frame(i)` renders frame i, `truth` lists every appearance."""

    def __init__(self, background: np.ndarray, walkers: Sequence[Walker], *, lanes: int,
                 frames_per_walker: int, face_px: tuple[int, int], n_frames: int) -> None:
        self.background = background
        self.walkers = tuple(walkers)
        self.lanes = lanes
        self.frames_per_walker = frames_per_walker
        self.face_px = face_px
        self.n_frames = n_frames
        self._by_frame: dict[int, list[Appearance]] = {}
        for w in self.walkers:
            for step in range(frames_per_walker):
                a = self._appearance(w, step)
                self._by_frame.setdefault(a.frame, []).append(a)

    def __len__(self) -> int:
        return self.n_frames

    @property
    def size(self) -> tuple[int, int]:
        return self.background.shape[1], self.background.shape[0]

    @property
    def truth(self) -> list[Appearance]:
        return [a for i in sorted(self._by_frame) for a in self._by_frame[i]]

    def appearances(self, index: int) -> list[Appearance]:
        return list(self._by_frame.get(index, ()))

    def _appearance(self, w: Walker, step: int) -> Appearance:
        width, height = self.size
        lane_w = width / self.lanes
        t = step / max(1, self.frames_per_walker - 1)
        lo, hi = self.face_px
        size = int(round(lo * (hi / lo) ** t))           # geometric growth: constant ratio per frame
        x = lane_w * w.lane + (lane_w - size) / 2 + (t - 0.5) * 0.15 * lane_w
        x = min(max(0.0, x), width - size)
        top, bottom = 0.06 * height, height - hi - 0.06 * height
        y = top + t * (bottom - top)
        photo = w.photos[min(len(w.photos) - 1, step * len(w.photos) // self.frames_per_walker)]
        return Appearance(w.first_frame + step, w.person, (x, y, x + size, y + size), photo)

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (BGR uint8), rendered now from the background and the walkers' photos."""
        image = self.background.copy()
        for a in self._by_frame.get(index, ()):
            x1, y1, x2, _ = (int(round(v)) for v in a.box)
            paste_face(image, a.photo, x1, y1, x2 - x1)
        return image

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.frame(i) for i in range(self.n_frames))


def build_scene(people: Sequence[Person], background: np.ndarray, *, lanes: int = 3,
                frames_per_walker: int = 8,
                gap_frames: int = 4, photos_per_walker: int = 2, face_px: tuple[int, int] = (95, 180),
                lead_in: int = 2) -> Scene:
    """Walk `people` past in order, one per lane at a time, `gap_frames` between two in the same lane.

    `face_px` are the face square's first and last side in pixels; they must fit a lane. A person with fewer
    photos than `photos_per_walker` reuses the ones there are.
    """
    width, height = background.shape[1], background.shape[0]
    if face_px[1] > width / lanes or face_px[1] > 0.6 * height or not 0 < face_px[0] <= face_px[1]:
        raise ValueError(f"faces of {face_px} px do not fit {lanes} lanes of a {width}×{height} frame")
    if frames_per_walker < 3 or gap_frames < 0 or lanes < 1:
        raise ValueError("need frames_per_walker >= 3, gap_frames >= 0 and lanes >= 1")
    cycle = frames_per_walker + gap_frames
    walkers = []
    for k, person in enumerate(people):
        lane, turn = k % lanes, k // lanes
        first = lead_in + turn * cycle + (lane * cycle) // lanes
        walkers.append(Walker(person.name, lane, first, person.photos[:photos_per_walker]))
    n_frames = (max(w.first_frame for w in walkers) + frames_per_walker + lead_in) if walkers else lead_in
    return Scene(background, walkers, lanes=lanes, frames_per_walker=frames_per_walker, face_px=face_px,
                 n_frames=n_frames)


class RenderedFrames(Protocol):
    """Frames rendered on demand: a walking `Scene` or a `firmware.capture.compose.PanningStill`."""

    def __len__(self) -> int: ...

    def frame(self, index: int) -> np.ndarray: ...


class SceneSource(SourceBase):
    """A `FrameSource` replaying rendered frames from memory at `fps` (0 = as fast as frames render)."""

    def __init__(self, scene: RenderedFrames, camera: str = "scene", fps: float = 15.0) -> None:
        super().__init__(camera)
        self.scene = scene
        self.fps = fps
        self._next = 0
        self._due: float | None = None

    def open(self) -> None:
        self._closed = False

    def read(self, timeout: float) -> Frame | None:
        if self._closed or self._exhausted:
            return None
        if self._next >= len(self.scene):
            self._exhausted = True
            return None
        if self.fps > 0:
            now = time.monotonic()
            self._due = now if self._due is None else self._due
            wait = self._due - now
            if wait > timeout:
                time.sleep(timeout)
                return None
            if wait > 0:
                time.sleep(wait)
            self._due += 1.0 / self.fps
        image = self.scene.frame(self._next)
        self._next += 1
        return self._frame(image)

    def close(self) -> None:
        self._closed = True
