"""`lfr camera check`: read each configured camera for a few seconds and report what arrives (set-up)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from firmware.capture.registry import make_source
from firmware.capture.source import CaptureThread
from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.config import CameraConfig
from firmware.errors import CameraError, ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("camera", help="check the configured cameras")
    csub = p.add_subparsers(dest="camera_command", metavar="ACTION", required=True)
    check = csub.add_parser("check", help="read each camera a few seconds; report frame rate, drops, sizes")
    add_config_argument(check)
    add_json_argument(check)
    check.add_argument("--camera", metavar="NAME", help="only this camera (default: all configured)")
    check.add_argument("--seconds", type=float, default=5.0, help="how long to read each camera (default 5)")
    check.set_defaults(func=_check)


def probe(cfg: CameraConfig, seconds: float) -> dict[str, Any]:
    """Run `cfg`'s source under a capture thread for `seconds` with a consumer taking every frame it can."""
    capture = CaptureThread(make_source(cfg), poll=0.2).start()
    frames, first, last = 0, 0.0, 0.0
    size: tuple[int, ...] | None = None
    lores: tuple[int, ...] | None = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        frame = capture.slot.wait_for_frame(min(0.5, max(0.0, deadline - time.monotonic())))
        if frame is None:
            if capture.slot.is_closed:
                break
            continue
        frames += 1
        first = frame.t_mono if frames == 1 else first
        size = frame.image.shape[1::-1]
        lores = frame.lores.shape[1::-1] if frame.lores is not None else None
        last = frame.t_mono
    capture.stop()
    stats = capture.source.stats
    rate = (frames - 1) / (last - first) if frames > 1 and last > first else 0.0
    return {"camera": cfg.name, "source": cfg.source, "frames": frames, "fps": round(rate, 1),
            "dropped": capture.slot.dropped, "reconnects": stats.reconnects, "failures": stats.failures,
            "size": size, "lores_size": lores, "error": str(capture.error) if capture.error else None}


def _check(args: argparse.Namespace) -> int:
    cameras = app_config(args, state=False).cameras
    if args.camera:
        cameras = tuple(c for c in cameras if c.name == args.camera)
        if not cameras:
            raise ConfigError(f"no camera named {args.camera!r} in the configuration")
    results = [probe(cfg, args.seconds) for cfg in cameras]
    lines = [f"{r['camera']} ({r['source']}): {r['frames']} frames, {r['fps']} frames/s, "
             f"{r['dropped']} dropped, {r['reconnects']} reconnects, size {r['size']}, "
             f"lores {r['lores_size']}"
             + (f"\n  error: {r['error']}" if r["error"] else "") for r in results]
    emit(args, {"cameras": results}, "\n".join(lines))
    broken = [r["camera"] for r in results if r["frames"] == 0]
    if broken:
        raise CameraError(f"no frames from camera {', '.join(broken)} in {args.seconds:g} s")
    return 0
