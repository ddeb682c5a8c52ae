"""`lfr bench pipeline --what matrix`: frames per second, CPU use and dropped frames of the real pipeline
against frame size, faces per frame and inference threads.

Each cell is one frame size × one number of faces × one TFLite thread count (`models.threads`). Its scene is
that many LFW faces (distinct people, the first of them on a 5-subject watchlist under another photo, so the
alert path runs too) pasted on the shared MOT17 street frame (its own faces blurred), scaled to the size;
faces are 220 px at 1080p and scaled with the frame height. The view pans slowly back and forth
(`PanningStill`), so every face moves a few pixels a frame and the tracker follows real motion. By default
the same people stay in view (steady state: every face tracked, mesh-aligned and quality-checked each
frame, embedded only when its track needs another shot); with `churn_frames` > 0 another group of as many
people, elsewhere in the frame, replaces them every `churn_frames` frames (arrivals: each new track is
embedded 2-3 times). Two runs
per cell, each in a throwaway state (database, deployment, watchlist):
- throughput: `warmup` + `frames` frames, every one through `CameraPipeline` (detect on tiles, track,
  quality, align, embed, match, decide, preview) and the hub: fps, CPU, per-stage times;
- live: `frames` frames delivered at `camera_fps` through the capture thread, the newest-frame slot and the
  camera worker: how many the slot dropped because the pipeline was still busy.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from firmware.bench.live import run_live, run_offline
from firmware.bench.scene_run import scene_background
from firmware.bench.testbed import bench_state
from firmware.capture.compose import PAN_PX, PanningStill, compose
from firmware.capture.scene import SceneSource, lfw_people
from firmware.config import AppConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError
from firmware.match.score import ScoreCalibration

Size = tuple[int, int]
DEFAULT_SIZES: tuple[Size, ...] = ((1280, 720), (1920, 1080))
DEFAULT_FACES = (1, 5, 10, 20)
DEFAULT_THREADS = (1, 2)
FACE_PX_AT_1080P = 220
WATCHLIST_OTHERS = 4


@dataclass(frozen=True)
class MatrixSpec:
    """What to measure: sizes (width, height), faces per frame, thread counts, frames per cell and run."""

    sizes: tuple[Size, ...] = DEFAULT_SIZES
    faces: tuple[int, ...] = DEFAULT_FACES
    threads: tuple[int, ...] = DEFAULT_THREADS
    frames: int = 60
    warmup: int = 10
    camera_fps: float = 30.0
    tiles: tuple[int, int] = (3, 2)
    live: bool = True
    churn_frames: int = 0

    def __post_init__(self) -> None:
        if not (self.sizes and self.faces and self.threads):
            raise ValueError("the matrix needs at least one size, one face count and one thread count")
        if self.frames < 1 or self.warmup < 0 or self.camera_fps <= 0 or min(self.faces) < 1:
            raise ValueError("need frames >= 1, warmup >= 0, camera_fps > 0 and at least one face per frame")
        if self.churn_frames < 0:
            raise ValueError("churn_frames must be 0 (the same people throughout) or more")


@dataclass(frozen=True)
class Cast:
    """The people of the matrix scenes: groups of photos (one per face, distinct people), and the watchlist."""

    groups: tuple[tuple[Path, ...], ...]
    watchlist: tuple[tuple[str, Path], ...]


def matrix_cast(lfw_dir: Path, faces: int, *, groups: int = 2, seed: int = 0) -> Cast:
    """`groups` groups of `faces` photos of distinct LFW people; the first person of the first group is also
    on the watchlist with another photo, beside `WATCHLIST_OTHERS` people who never appear."""
    rng = random.Random(seed)
    everyone = lfw_people(lfw_dir)
    twice = [p for p in everyone if len(p.photos) >= 2]
    wanted = groups * faces - 1 + WATCHLIST_OTHERS
    if not twice or len(everyone) <= wanted:
        raise DataError(f"LFW at {lfw_dir} has too few people for {groups} groups of {faces} faces")
    listed = rng.choice(twice)
    others = rng.sample([p for p in everyone if p.name != listed.name], wanted)
    photos = [listed.photos[1], *(p.photos[0] for p in others[:groups * faces - 1])]
    absent = others[groups * faces - 1:]
    return Cast(groups=tuple(tuple(photos[g * faces:(g + 1) * faces]) for g in range(groups)),
                watchlist=((listed.name, listed.photos[0]), *((p.name, p.photos[0]) for p in absent)))


def face_px(size: Size) -> int:
    """Side of a pasted face in pixels for a frame of `size`: 220 at 1080p, scaled with the height."""
    return round(FACE_PX_AT_1080P * size[1] / 1080)


def cell_config(cfg: AppConfig, threads: int, tiles: tuple[int, int]) -> AppConfig:
    """`cfg` with `threads` inference threads and, unless its `[pipeline]` already tiles, `tiles` for frames
    at least `pipeline.tile_min_width` wide (a replay camera has no lores stream to detect on)."""
    c = replace(cfg, models=replace(cfg.models, threads=threads))
    if (cfg.pipeline.tiles_cols, cfg.pipeline.tiles_rows) == (1, 1):
        c = replace(c, pipeline=replace(cfg.pipeline, tiles_cols=tiles[0], tiles_rows=tiles[1]))
    return c


def run_cell(cfg: AppConfig, recognizer: Recognizer, calibration: ScoreCalibration, background: np.ndarray,
             cast: Cast, *, faces: int, spec: MatrixSpec) -> dict[str, Any]:
    """One cell: the throughput run and (if `spec.live`) the live run at `spec.camera_fps`."""
    size = (background.shape[1], background.shape[0])
    groups = cast.groups if spec.churn_frames else cast.groups[:1]
    stills = [compose(background, g[:faces], face_px=face_px(size), margin_px=PAN_PX, seed=k)
              for k, g in enumerate(groups)]
    cell: dict[str, Any] = {"size": f"{size[0]}x{size[1]}", "faces": faces, "threads": cfg.models.threads,
                            "face_px": face_px(size)}
    with bench_state(cfg, recognizer, cast.watchlist) as (run_cfg, db):
        cell["throughput"] = run_offline(run_cfg, recognizer, calibration, db,
                                         PanningStill(stills, spec.warmup + spec.frames,
                                                      hold_frames=spec.churn_frames), warmup=spec.warmup)
    if spec.live:
        with bench_state(cfg, recognizer, cast.watchlist) as (run_cfg, db):
            source = SceneSource(PanningStill(stills, spec.frames, hold_frames=spec.churn_frames), camera="bench",
                                 fps=spec.camera_fps)
            cell["live"] = run_live(run_cfg, recognizer, calibration, db, source)
    return cell


def run_matrix(cfg: AppConfig, calibration: ScoreCalibration, data_dir: Path, spec: MatrixSpec) -> dict[str, Any]:
    """Every cell of `spec`. The models are loaded once per thread count, all before the first cell, and the
    thread counts take turns cell by cell, so a change in the machine's load hits them alike."""
    cast = matrix_cast(data_dir / "lfw", max(spec.faces))
    configs = {t: cell_config(cfg, t, spec.tiles) for t in spec.threads}
    recognizers = {t: Recognizer.from_config(c) for t, c in configs.items()}
    first = recognizers[spec.threads[0]]
    cells = []
    for size in spec.sizes:
        background = scene_background(data_dir, first, size)
        for faces in spec.faces:
            for t in spec.threads:
                cells.append(run_cell(configs[t], recognizers[t], calibration, background, cast, faces=faces,
                                      spec=spec))
    p = configs[spec.threads[0]].pipeline
    return {"spec": {"sizes": [f"{w}x{h}" for w, h in spec.sizes], "faces": list(spec.faces),
                     "threads": list(spec.threads), "frames": spec.frames, "warmup": spec.warmup,
                     "camera_fps": spec.camera_fps, "churn_frames": spec.churn_frames,
                     "tiles": [p.tiles_cols, p.tiles_rows], "tile_min_width": p.tile_min_width},
            "accelerator": {str(t): r.health() for t, r in recognizers.items()}, "cells": cells}
