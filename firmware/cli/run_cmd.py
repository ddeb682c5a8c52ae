"""`lfr run`: the appliance. `--hub-only` (the database owner), `--camera NAME` (one camera's pipeline), or
both in one process for development; `--validate-config` only checks the file (systemd ExecStartPre).
This module only parses and reports; the processes are composed in `firmware.pipeline.processes`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType
from typing import Any

from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.errors import LfrError
from firmware.hardware.watchdog import SystemdNotifier
from firmware.pipeline.processes import run_all_in_one, run_camera_process, run_hub_process
from firmware.pipeline.runner import camera_config

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the appliance (hub and cameras); systemd's ExecStart")
    add_config_argument(p)
    add_json_argument(p)
    p.add_argument("--validate-config", action="store_true", help="only check the configuration; exit 0 or 2")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--camera", metavar="NAME",
                      help="run only this camera's pipeline (one process per camera)")
    mode.add_argument("--hub-only", action="store_true", help="run only the hub: database, stats, sinks")
    p.add_argument("--frames", type=int, metavar="N",
                   help="stop each camera after N processed frames; refuses at once when not ready to scan "
                        "(no open deployment or no watchlist)")
    p.set_defaults(func=_run)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _run(args: argparse.Namespace) -> int:
    cfg = app_config(args)
    if args.camera:
        camera_config(cfg, args.camera)
    if args.frames is not None and args.frames < 1:
        raise LfrError("--frames must be at least 1")
    if args.validate_config:
        names = [c.name for c in cfg.cameras]
        emit(args, {"valid": True, "cameras": names}, f"configuration is valid; cameras: {', '.join(names)}")
        return 0
    stop = threading.Event()
    _stop_on_signals(stop)
    with SystemdNotifier() as notifier:
        try:
            if args.hub_only:
                result = run_hub_process(cfg, stop, notifier)
            elif args.camera:
                result = run_camera_process(cfg, args.camera, stop, notifier, args.frames)
            else:
                result = run_all_in_one(cfg, stop, notifier, args.frames)
        finally:
            notifier.stopping()
    emit(args, result, _text(result))
    return 1 if any(c.get("error") for c in result.get("cameras", [])) else 0


def _text(result: dict[str, Any]) -> str:
    lines = []
    for c in result.get("cameras", []):
        line = (f"camera {c['camera']}: {c['frames']} frames at {c['fps']:.1f} fps, {c['dropped']} dropped, "
                f"{c['counters'].get('faces_seen', 0)} faces seen, {c['alerts_sent']} alert(s)")
        lines.append(line + (f"; error: {c['error']}" if c.get("error") else ""))
    if "hub" in result:
        h = result["hub"]
        lines.append(f"hub: {h['alerts_recorded']} alert(s) recorded, {h['alerts_refused']} refused, "
                     f"{h['previews']} preview frame(s)")
    return "\n".join(lines)
