"""The two shared clips run end to end through the pipeline (`lfr bench pipeline` gives the full figures)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from firmware.bench.pipeline import bench_video
from firmware.config import AppConfig, PipelineConfig
from firmware.embed.recognizer import Recognizer
from firmware.match.score import ScoreCalibration


@pytest.mark.slow
def test_hamilton_clip_faces_seen(shared_data: Path, recognizer: Recognizer,
                                  calibration: ScoreCalibration) -> None:
    r = bench_video(AppConfig(), recognizer, calibration, shared_data / "video/short_hamilton_clip.mp4",
                    shared_data / "lfw", max_frames=120)
    assert r["frames"] == 120 and r["size"] == "640x360"
    assert r["faces_seen"] >= 3 and r["embeddings"] >= 1
    assert r["fps"] > 0


@pytest.mark.slow
def test_mot17_h265_runs_tiled(shared_data: Path, recognizer: Recognizer,
                               calibration: ScoreCalibration) -> None:
    """A 960×540 HEVC street clip decodes and runs through tiled detection (3×2) without error; its people
    are too far away for faces to be found (figures in docs/pipeline.md)."""
    cfg = replace(AppConfig(), pipeline=PipelineConfig(tiles_cols=3, tiles_rows=2, tile_min_width=640))
    r = bench_video(cfg, recognizer, calibration, shared_data / "video/MOT17-13-SDP-raw.h265",
                    shared_data / "lfw", max_frames=40)
    assert r["frames"] == 40 and r["size"] == "960x540"
    assert r["timings"]["detect"]["calls"] == 40
