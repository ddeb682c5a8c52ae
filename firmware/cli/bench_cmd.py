"""`lfr bench stages|match`: how fast the recognition core and the watchlist search are on this machine."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

from firmware.bench import match, plots, stages
from firmware.bench.scene import compose, read_background
from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.errors import DataError
from firmware.eval.lfw import iter_images

DEFAULT_DATA = Path("../shared/data")
DEFAULT_BACKGROUND = "video/MOT17-13-SDP-raw.h265"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure speed: per-stage latency, 1:N search")
    bsub = p.add_subparsers(dest="bench_command", metavar="WHAT", required=True)

    s = bsub.add_parser("stages", help="per-stage latency p50/p99, int8 and float models in the same run")
    s.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help="shared data folder holding lfw/images and the background video")
    s.add_argument("--images", type=int, default=300, help="LFW images to time (default 300)")
    s.add_argument("--frames", type=int, default=30, help="runs of the 1080p scene (default 30)")
    s.add_argument("--faces", type=int, default=10, help="LFW faces pasted in the 1080p scene (default 10)")
    s.add_argument("--watchlist", type=int, default=10_000, help="synthetic watchlist size for match")
    s.add_argument("--plot", type=Path, help="write a latency-per-stage chart to this PNG")
    add_config_argument(s)
    add_json_argument(s)
    s.set_defaults(func=_stages)

    m = bsub.add_parser("match", help="1:N search time and memory vs watchlist size and layout")
    m.add_argument("--sizes", default="1000,10000,100000,1000000",
                   help="comma-separated watchlist sizes (default 1k,10k,100k,1M)")
    m.add_argument("--probes", type=int, default=100, help="mated probes per size, and as many non-mated")
    m.add_argument("--plot", type=Path, help="write a search-time-vs-size chart to this PNG")
    add_json_argument(m)
    m.set_defaults(func=_match)


def lfw_sample(images: Path, count: int) -> list[Path]:
    """`count` LFW images spread evenly over the people (sorted order, so every run takes the same ones)."""
    all_images = list(iter_images(images))
    if not all_images:
        raise DataError(f"no LFW images under {images}")
    step = max(1, len(all_images) // max(count, 1))
    return list(itertools.islice(all_images[::step], count))


def _stages(args: argparse.Namespace) -> int:
    cfg = app_config(args)
    images = lfw_sample(args.data / "lfw" / "images", args.images)
    faces = lfw_sample(args.data / "lfw" / "images", args.faces * 7)[3::7][:args.faces]
    scene = compose(read_background(args.data / DEFAULT_BACKGROUND), faces)
    r = stages.run_stages(cfg, images, scene, frame_runs=args.frames, watchlist_size=args.watchlist)
    if args.plot:
        plots.plot_stages(r, args.plot)
    emit(args, r, stages.format_stages(r))
    return 0


def _match(args: argparse.Namespace) -> int:
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x]
    except ValueError as exc:
        raise DataError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from exc
    if not sizes or min(sizes) < 1:
        raise DataError("--sizes needs at least one positive watchlist size")
    r = match.run_match(sizes, n_probes=args.probes)
    if args.plot:
        plots.plot_match(r, args.plot)
    emit(args, r, match.format_match(r))
    return 0
