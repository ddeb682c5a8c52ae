"""`lfr run`: the appliance. `--hub-only` (the database owner), `--camera NAME` (one camera's pipeline), or
both in one process for development; `--validate-config` only checks the file (systemd ExecStartPre)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from contextlib import ExitStack, closing
from types import FrameType
from typing import Any

from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.config import AppConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import LfrError, PolicyError
from firmware.hardware.stop_flag import StopFlag
from firmware.hardware.watchdog import SystemdNotifier
from firmware.pipeline.channel import QueueChannel, ZmqHubReceiver, ZmqHubSender
from firmware.pipeline.hub import Hub
from firmware.pipeline.runner import CameraSummary, CameraWorker, calibration_for, camera_config, run_hub
from firmware.pipeline.services import HubServices
from firmware.store.db import open_config_db
from firmware.store.deployments import require_ready_to_scan

log = logging.getLogger(__name__)
READY_POLL_S = 2.0


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
                result = _hub_only(cfg, stop, notifier)
            elif args.camera:
                result = _camera(cfg, args.camera, stop, notifier, args.frames)
            else:
                result = _all_in_one(cfg, stop, notifier, args.frames)
        finally:
            notifier.stopping()
    emit(args, result, _text(result))
    return 1 if any(c.get("error") for c in result.get("cameras", [])) else 0


def _wait_ready(hub: Hub, stop: threading.Event, notifier: SystemdNotifier,
                services: HubServices | None = None) -> bool:
    """Wait (pinging the watchdog) until a deployment is open with a watchlist; False if stopped first."""
    told = False
    while not stop.is_set():
        if services is not None:
            services.tick()
        try:
            dep = hub.require_ready()
        except PolicyError as exc:
            if not told:
                log.warning("not scanning: %s", exc)
                notifier.status(f"not scanning: {exc}")
                told = True
            notifier.ping()
            stop.wait(READY_POLL_S)
            continue
        log.info("ready to scan: deployment %d at %s", dep.id, dep.location)
        notifier.status(f"scanning: deployment {dep.id}")
        return True
    return False


def _hub_only(cfg: AppConfig, stop: threading.Event, notifier: SystemdNotifier) -> dict[str, Any]:
    db = open_config_db(cfg)
    receiver = ZmqHubReceiver(cfg.pipeline.hub_socket)
    try:
        hub = Hub(db, calibration_for(cfg), cfg.pipeline)
        with closing(HubServices(cfg, hub)) as services:
            notifier.ready("hub up")
            if _wait_ready(hub, stop, notifier, services):
                run_hub(hub, receiver, stop, watchdog=notifier, services=services)
        return {"hub": vars(hub.totals)}
    finally:
        receiver.close()
        db.close()


def _camera(cfg: AppConfig, name: str, stop: threading.Event, notifier: SystemdNotifier,
            frames: int | None) -> dict[str, Any]:
    cam = camera_config(cfg, name)
    if frames is not None:  # a bounded run refuses at once rather than wait for a deployment
        db = open_config_db(cfg)
        try:
            require_ready_to_scan(db)
        finally:
            db.close()
    recognizer = Recognizer.from_config(cfg)
    sender = ZmqHubSender(cfg.pipeline.hub_socket)
    try:
        worker = CameraWorker(cfg, cam, recognizer, sender, calibration_for(cfg), stop, max_frames=frames,
                              watchdog=notifier, is_paused=StopFlag(cfg.appliance.stop_flag).is_set)
        notifier.ready(f"camera {name} up; {'; '.join(recognizer.health().values())}")
        summary = worker.run()
    finally:
        sender.close()
    return {"cameras": [summary.as_dict()]}


def _all_in_one(cfg: AppConfig, stop: threading.Event, notifier: SystemdNotifier,
                frames: int | None) -> dict[str, Any]:
    """Hub in this thread, one thread per camera, talking over a queue (development and `lfr demo`)."""
    db = open_config_db(cfg)
    stack = ExitStack()
    try:
        calibration = calibration_for(cfg)
        hub = Hub(db, calibration, cfg.pipeline)
        if frames is not None:
            hub.require_ready()
        channel = QueueChannel()
        summaries: list[CameraSummary] = []
        threads = []
        recognizers = [Recognizer.from_config(cfg) for _ in cfg.cameras]
        services = stack.enter_context(closing(HubServices(cfg, hub, recognizers=recognizers)))
        for cam, recognizer in zip(cfg.cameras, recognizers, strict=True):
            worker = CameraWorker(cfg, cam, recognizer, channel, calibration, stop, max_frames=frames,
                                  is_paused=services.is_paused)
            summaries.append(worker.summary)
            threads.append(threading.Thread(target=_run_worker, args=(worker,), name=f"camera-{cam.name}",
                                            daemon=True))
        for t in threads:
            t.start()
        notifier.ready(f"hub and {len(threads)} camera(s) up; {services.accelerator()}")
        if _wait_ready(hub, stop, notifier, services):
            run_hub(hub, channel, stop, watchdog=notifier, services=services,
                    until=lambda: not any(t.is_alive() for t in threads))
        stop.set()
        for t in threads:
            t.join(10.0)
        return {"hub": vars(hub.totals), "cameras": [s.as_dict() for s in summaries]}
    finally:
        stack.close()
        db.close()


def _run_worker(worker: CameraWorker) -> None:
    try:
        worker.run()
    except LfrError as exc:
        worker.summary.error = str(exc)
        log.error("camera %s stopped: %s", worker.camera.name, exc)


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
