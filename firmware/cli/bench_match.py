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


SUFFIXES = {"k": 1_000, "m": 1_000_000}


def parse_size(text: str) -> int:
    """A watchlist size as the help writes it: 1000, 1k, 10k, 1M (k = 1000, M = 1000000)."""
    word = text.strip().lower()
    scale = SUFFIXES.get(word[-1:], 1)
    number = word[:-1] if word[-1:] in SUFFIXES else word
    try:
        return int(float(number) * scale) if scale > 1 else int(number)
    except ValueError:
        raise DataError(f"--sizes takes comma-separated sizes such as 1000,10k,1M; {text.strip()!r} is not one") \
            from None


def _match(args: argparse.Namespace) -> int:
    sizes = [parse_size(x) for x in args.sizes.split(",") if x.strip()]
    if not sizes or min(sizes) < 1 or args.probes < 1:
        raise DataError("--sizes needs positive watchlist sizes and --probes at least 1")
    r = match.run_match(sizes, n_probes=args.probes)
    if args.plot:
        plots.plot_match(r, args.plot)
    emit(args, r, match.format_match(r))
    return 0
