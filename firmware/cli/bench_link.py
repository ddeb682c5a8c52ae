"""`lfr bench link`: capture-to-screen latency of alerts over the real link on loopback."""

from __future__ import annotations

import argparse

from firmware.cli.common import add_json_argument, emit


def register(bsub: argparse._SubParsersAction) -> None:
    p = bsub.add_parser("link", help="capture-to-screen latency of alerts over the link on loopback")
    p.add_argument("--alerts", type=int, default=200, help="alerts to time (default 200)")
    p.add_argument("--no-browser", action="store_true",
                   help="time at the WebSocket instead of in headless Chromium")
    add_json_argument(p)
    p.set_defaults(func=_run_link)


def _run_link(args: argparse.Namespace) -> int:
    from firmware.bench import link
    from firmware.progress import progress

    bar = progress(range(args.alerts), "alerts", args.alerts)

    def step(n: int) -> None:
        next(bar, None)

    result = link.run(args.alerts, use_browser=False if args.no_browser else None, progress=step)
    emit(args, result, f"capture-to-screen over {result['alerts']} alerts on loopback "
                       f"(measured at {result['measured_at']}): p50 {result['p50_ms']:.1f} ms, "
                       f"p99 {result['p99_ms']:.1f} ms, mean {result['mean_ms']:.1f} ms, "
                       f"max {result['max_ms']:.1f} ms; of which record_alert p50 "
                       f"{result['record_alert_p50_ms']:.1f} ms, p99 {result['record_alert_p99_ms']:.1f} ms")
    return 0
