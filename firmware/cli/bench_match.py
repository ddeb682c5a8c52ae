"""`lfr bench match`: 1:N search time and memory against watchlist size, float32 vs compact layouts."""

from __future__ import annotations

import argparse
from pathlib import Path

from firmware.bench import match, plots
from firmware.cli.common import add_json_argument, emit
from firmware.errors import DataError


def register(bsub: argparse._SubParsersAction) -> None:
    m = bsub.add_parser("match", help="1:N search time and memory vs watchlist size and layout")
    m.add_argument("--sizes", default="1000,10000,100000,1000000",
                   help="comma-separated watchlist sizes (default 1k,10k,100k,1M)")
    m.add_argument("--probes", type=int, default=100, help="mated probes per size, and as many non-mated")
    m.add_argument("--plot", type=Path, help="write a search-time-vs-size chart to this PNG")
    add_json_argument(m)
    m.set_defaults(func=_match)


def _match(args: argparse.Namespace) -> int:
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x]
    except ValueError as exc:
        raise DataError(f"--sizes must be comma-separated integers, got {args.sizes!r}") from exc
    if not sizes or min(sizes) < 1 or args.probes < 1:
        raise DataError("--sizes needs positive watchlist sizes and --probes at least 1")
    r = match.run_match(sizes, n_probes=args.probes)
    if args.plot:
        plots.plot_match(r, args.plot)
    emit(args, r, match.format_match(r))
    return 0
