"""Enrolment throughput: reference photos per second through decode, detect, quality, align and embed.

The clock runs over exactly what an import does per entry after verification (`decode_bgr` then
`Enroller.enrol`), on files read into memory first, so disk speed is not measured. One image is enrolled
before the clock starts so lazy initialisation (XNNPACK packing, first allocations) is not counted.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from firmware.errors import DataError
from firmware.eval.lfw import iter_images
from firmware.watchlist.enrol import Enroller
from firmware.watchlist.images import decode_bgr

DEFAULT_COUNT = 2000
SEED = 20261122


@dataclass(frozen=True)
class EnrolBench:
    """`images` enrolled in `seconds` (wall, monotonic clock); how many were accepted and why others not."""

    images: int
    seconds: float
    accepted: int
    rejections: dict[str, int] = field(default_factory=dict)
    backend: dict[str, str] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "seconds": round(self.seconds, 3),
                "images_per_second": round(self.images_per_second, 2), "accepted": self.accepted,
                "rejections": self.rejections, "backend": self.backend}


def sample_images(images_dir: Path, count: int, seed: int = SEED) -> list[Path]:
    """`count` images drawn without replacement (fixed seed) from a `<Name>/*.jpg` folder such as LFW's."""
    paths = list(iter_images(images_dir))
    if len(paths) < count:
        raise DataError(f"{images_dir} holds {len(paths)} images, fewer than the {count} asked for")
    picked = np.random.default_rng(seed).choice(len(paths), size=count, replace=False)
    return [paths[i] for i in sorted(picked.tolist())]


def bench_enrol(enroller: Enroller, paths: Sequence[Path], backend: dict[str, str] | None = None,
                on_progress: Callable[[int, int], None] | None = None) -> EnrolBench:
    """Enrol every image of `paths` (read into memory beforehand) and time it."""
    if not paths:
        raise DataError("no images to benchmark")
    blobs = [p.read_bytes() for p in paths]
    enroller.enrol(decode_bgr(blobs[0]))  # warm-up, not timed
    reasons: Counter[str] = Counter()
    start = time.monotonic()
    for done, data in enumerate(blobs, 1):
        result = enroller.enrol(decode_bgr(data))
        if result.rejection is not None:
            reasons[result.rejection.value] += 1
        if on_progress is not None:
            on_progress(done, len(blobs))
    seconds = time.monotonic() - start
    return EnrolBench(len(blobs), seconds, len(blobs) - sum(reasons.values()), dict(reasons), backend or {})
