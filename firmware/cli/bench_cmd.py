"""`lfr bench WHAT`: throughput measurements; each WHAT is its own module listed in BENCHES.

Each module in BENCHES defines `register(bench_subparsers)` adding one sub-command with
`set_defaults(func=...)`; add a line here for a new benchmark.
"""

from __future__ import annotations

import argparse
import importlib

BENCHES: tuple[str, ...] = (
    "firmware.cli.bench_enrol",
    "firmware.cli.bench_pipeline",
    "firmware.cli.bench_link",
    "firmware.cli.bench_stages",
    "firmware.cli.bench_match",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure throughput of the appliance's stages on real images")
    bsub = p.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    for name in BENCHES:
        importlib.import_module(name).register(bsub)
