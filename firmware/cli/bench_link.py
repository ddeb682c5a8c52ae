"""`lfr bench link`: capture-to-screen latency of alerts over the real link on loopback."""

from __future__ import annotations

import argparse
from typing import Any

from firmware.cli.common import add_json_argument, emit


def register(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("link", help="capture-to-screen latency of alerts over the link on loopback")
    p.add_argument("--alerts", type=int, default=200, help="alerts to time (default 200)")
    p.add_argument("--no-browser", action="store_true",
                   help="time at the WebSocket instead of in headless Chromium")
    p.add_argument("--load", type=int, default=0, metavar="N",
                   help="also run with N busy processes on the machine (after a quiet run) and report both")
    p.add_argument("--load-nice", type=int, default=None, metavar="K",
                   help="niceness of the busy processes (default: the camera units' Nice=, 10; 0 = the bench's own)")
    p.add_argument("--in-process", action="store_true",
                   help="run the appliance end in the bench's process, not in its own (the layout before; to compare)")
    add_json_argument(p)
    p.set_defaults(func=_run_link)


def _run_link(args: argparse.Namespace) -> int:
    from firmware.bench import link
    from firmware.progress import progress

    runs = 2 if args.load > 0 else 1
    bar = progress(range(args.alerts * runs), "alerts", args.alerts * runs)

    def step(n: int) -> None:
        next(bar, None)

    nice = link.CAMERA_NICE if args.load_nice is None else args.load_nice
    result = link.run(args.alerts, use_browser=False if args.no_browser else None, load=args.load,
                      load_nice=nice, in_process=args.in_process, progress=step)
    text = _summary(result, f"load {args.load} busy processes at nice {nice}" if args.load else "no added load")
    if "quiet" in result:
        text = _summary(result["quiet"], "quiet") + "\n" + text
    emit(args, result, text)
    return 0


def _summary(r: dict[str, Any], label: str) -> str:
    parts = "; ".join(f"{name} p50 {v['p50_ms']:.1f} / p99 {v['p99_ms']:.1f} ms" for name, v in r["parts"].items())
    return (f"{label}: capture-to-screen over {r['alerts']} alerts on loopback (measured at {r['measured_at']}, "
            f"appliance in {r['appliance']}): "
            f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, mean {r['mean_ms']:.1f} ms, "
            f"max {r['max_ms']:.1f} ms; parts: {parts}")
