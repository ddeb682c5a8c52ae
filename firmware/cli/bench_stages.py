"""`lfr bench stages`: per-stage latency of the recognition core, int8 and float models in one run."""

from __future__ import annotations

import argparse
import itertools
import os
from pathlib import Path

from firmware.bench import plots, stages
from firmware.capture.compose import compose, read_background
from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.config import REPO_MODELS_DIR
from firmware.errors import DataError
from firmware.eval.lfw import iter_images

BACKGROUND = Path("video") / "MOT17-13-SDP-raw.h265"


def default_data() -> Path:
    """The shared data folder: `$LFR_TEST_DATA`, default `../shared/data` beside the repository."""
    return Path(os.environ.get("LFR_TEST_DATA") or REPO_MODELS_DIR.parent.parent / "shared" / "data")


def register(bsub: argparse._SubParsersAction) -> None:
    s = bsub.add_parser("stages", help="per-stage latency p50/p99, int8 and float models in the same run")
    s.add_argument("--data", type=Path, default=None,
                   help="shared data folder holding lfw/images and the background video "
                        "(default: $LFR_TEST_DATA or ../shared/data)")
    s.add_argument("--images", type=int, default=300, help="LFW photos to time (default 300)")
    s.add_argument("--frames", type=int, default=30, help="runs of the 1080p scene (default 30)")
    s.add_argument("--faces", type=int, default=10, help="LFW faces pasted in the 1080p scene (default 10)")
    s.add_argument("--watchlist", type=int, default=10_000, help="synthetic watchlist size for match")
    s.add_argument("--plot", type=Path, help="write a latency-per-stage chart to this PNG")
    add_config_argument(s)
    add_json_argument(s)
    s.set_defaults(func=_stages)


def lfw_sample(images: Path, count: int) -> list[Path]:
    """`count` LFW photos spread evenly over the people (sorted order, so every run takes the same ones)."""
    all_images = list(iter_images(images))
    step = max(1, len(all_images) // max(count, 1))
    return list(itertools.islice(all_images[::step], count))


def _stages(args: argparse.Namespace) -> int:
    for name in ("images", "frames", "faces", "watchlist"):
        if getattr(args, name) < 1:
            raise DataError(f"--{name} must be at least 1, got {getattr(args, name)}")
    cfg = app_config(args, state=False)
    data = args.data or default_data()
    images = lfw_sample(data / "lfw" / "images", args.images)
    faces = lfw_sample(data / "lfw" / "images", args.faces * 7)[3::7][:args.faces]
    scene = compose(read_background(data / BACKGROUND), faces)
    r = stages.run_stages(cfg, images, scene, frame_runs=args.frames, watchlist_size=args.watchlist)
    if args.plot:
        plots.plot_stages(r, args.plot)
    emit(args, r, stages.format_stages(r))
    return 0
