"""The appliance's processes, composed: the hub (the database owner), one camera, or both in one process.

`lfr run` parses its flags and calls one of these: `run_hub_process` (`--hub-only`: database, link, lights,
health, fed by the cameras over the hub socket), `run_camera_process` (`--camera NAME`: one camera's
pipeline sending to the hub socket) or `run_all_in_one` (development and `lfr demo`: the hub in this thread,
one thread per camera, over a queue). Each returns what it did as a dict for `--json`.
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack, closing
from typing import Any

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


def wait_ready(hub: Hub, stop: threading.Event, notifier: SystemdNotifier,
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


def run_hub_process(cfg: AppConfig, stop: threading.Event, notifier: SystemdNotifier) -> dict[str, Any]:
    """The hub alone: database, link, lights and health, fed by camera processes over the hub socket."""
    db = open_config_db(cfg)
    receiver = ZmqHubReceiver(cfg.pipeline.hub_socket)
    try:
        hub = Hub(db, calibration_for(cfg), cfg.pipeline)
        with closing(HubServices(cfg, hub)) as services:
            notifier.ready("hub up")
            if wait_ready(hub, stop, notifier, services):
                run_hub(hub, receiver, stop, watchdog=notifier, services=services)
        return {"hub": vars(hub.totals)}
    finally:
        receiver.close()
        db.close()


def run_camera_process(cfg: AppConfig, name: str, stop: threading.Event, notifier: SystemdNotifier,
                       frames: int | None) -> dict[str, Any]:
    """One camera's pipeline, sending to the hub socket; `frames` bounds the run (and refuses at once when
    not ready to scan rather than wait for a deployment)."""
    cam = camera_config(cfg, name)
    if frames is not None:
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


def run_all_in_one(cfg: AppConfig, stop: threading.Event, notifier: SystemdNotifier,
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
                                  is_paused=services.lights.is_paused)
            summaries.append(worker.summary)
            threads.append(threading.Thread(target=_run_worker, args=(worker,), name=f"camera-{cam.name}",
                                            daemon=True))
        for t in threads:
            t.start()
        notifier.ready(f"hub and {len(threads)} camera(s) up; {services.reporter.accelerator()}")
        if wait_ready(hub, stop, notifier, services):
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
