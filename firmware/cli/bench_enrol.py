"""`lfr bench enrol`: watchlist enrolment throughput in images per second (firmware/bench/enrol.py)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from firmware.bench.enrol import DEFAULT_COUNT, bench_enrol, sample_images
from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.config import REPO_MODELS_DIR
from firmware.errors import DataError
from firmware.progress import ProgressBar
from firmware.watchlist.enrol import RecognizerEnroller


def default_images() -> Path:
    """LFW's images in the shared data: `$LFR_TEST_DATA/lfw/images`, default `../shared/data` by the repo."""
    data = os.environ.get("LFR_TEST_DATA") or str(REPO_MODELS_DIR.parent.parent / "shared" / "data")
    return Path(data) / "lfw" / "images"


def register(bsub: argparse._SubParsersAction) -> None:
    e = bsub.add_parser("enrol",
                        help="watchlist enrolment throughput (decode, detect, quality, align, embed)")
    e.add_argument("--images", type=Path, default=None,
                   help="folder of <Name>/*.jpg photos (default: $LFR_TEST_DATA/lfw/images)")
    e.add_argument("--count", type=int, default=DEFAULT_COUNT,
                   help=f"images to enrol (default {DEFAULT_COUNT})")
    add_config_argument(e)
    add_json_argument(e)
    e.set_defaults(func=_enrol)


def _enrol(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise DataError(f"--count must be at least 1, got {args.count}")
    cfg = app_config(args, state=False)
    paths = sample_images(args.images or default_images(), args.count)
    enroller = RecognizerEnroller.from_config(cfg)
    with ProgressBar("enrolling") as bar:
        result = bench_enrol(enroller, paths, enroller.recognizer.health(), bar)
    rejected = ", ".join(f"{k}: {v}" for k, v in sorted(result.rejections.items())) or "none"
    emit(args, result.to_dict(),
         f"enrolled {result.images} images in {result.seconds:.2f} s: "
         f"{result.images_per_second:.1f} images/s\n"
         f"accepted {result.accepted}; rejected {rejected}\n"
         + "\n".join(f"{k}: {v}" for k, v in result.backend.items()))
    return 0
