"""Two ways to push frames through the real camera pipeline and hub, with CPU use measured.

- `run_offline`: every frame, one after the other, as fast as the pipeline goes (the pipeline's throughput:
  frames per second, CPU, per-stage times), after `warmup` frames that are not counted. Frames per CPU
  second is the figure least moved by other jobs on a shared machine (it counts only the time this process
  got);
- `run_live`: a source delivering at its own rate (e.g. 30 fps) through the capture thread, the newest-frame
  slot and the camera worker, with the hub on this thread, as `lfr run` runs them: how many frames the
  pipeline took and how many the slot dropped because it was still busy.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import sqlite_utils

from firmware.bench.cpu import CpuMeter
from firmware.capture.frame import Frame
from firmware.capture.scene import RenderedFrames, SceneSource
from firmware.config import AppConfig, CameraConfig
from firmware.embed.recognizer import Recognizer
from firmware.match.score import ScoreCalibration
from firmware.pipeline.camera import CameraPipeline
from firmware.pipeline.channel import QueueChannel
from firmware.pipeline.hub import Hub
from firmware.pipeline.runner import CameraWorker, run_hub
from firmware.pipeline.watchlist_watch import WatchlistWatcher


def run_offline(cfg: AppConfig, recognizer: Recognizer, calibration: ScoreCalibration, db: sqlite_utils.Database,
                frames: RenderedFrames, *, warmup: int = 0) -> dict[str, Any]:
    """Process every frame of `frames` (stamped with the clock as it is read, like a camera's); the first
    `warmup` are not counted in any figure. The hub records alerts in `db` on the same thread."""
    if not 0 <= warmup < len(frames):
        raise ValueError(f"warmup ({warmup}) must be below the number of frames ({len(frames)})")
    channel = QueueChannel(maxsize=100_000)
    hub = Hub(db, calibration, cfg.pipeline)
    hub.require_ready()
    pipeline = CameraPipeline("bench", recognizer, cfg, channel)
    pipeline.set_watchlist(WatchlistWatcher(db, calibration).current())

    def step(i: int) -> None:
        pipeline.process(Frame("bench", i, frames.frame(i), time.monotonic(), time.time()))
        while (msg := channel.receive(0.0)) is not None:
            hub.handle(msg)

    for i in range(warmup):
        step(i)
    pipeline.flush_stats()
    pipeline.total_timings.take()
    before = dict(pipeline.totals)
    with CpuMeter() as cpu:
        for i in range(warmup, len(frames)):
            step(i)
    pipeline.flush_stats()
    while (msg := channel.receive(0.0)) is not None:
        hub.handle(msg)
    hub.close()
    n = len(frames) - warmup
    counts = {k: v - before.get(k, 0) for k, v in pipeline.totals.items()}
    return {"frames": n, "fps": round(n / cpu.wall_s, 3) if cpu.wall_s else 0.0, "cpu": cpu.as_dict(),
            "frames_per_cpu_second": round(n / cpu.cpu_s, 3) if cpu.cpu_s else 0.0,
            "faces_detected_per_frame": round(counts["faces_detected"] / n, 2),
            "faces_seen": counts["faces_seen"], "embeddings": counts["embeddings"],
            "alerts_recorded": hub.totals.alerts_recorded, "timings": pipeline.total_timings.summary()}


def run_live(cfg: AppConfig, recognizer: Recognizer, calibration: ScoreCalibration, db: sqlite_utils.Database,
             source: SceneSource, *, max_seconds: float | None = None) -> dict[str, Any]:
    """Camera worker (capture thread + newest-frame slot) in a thread and the hub on this one, as `lfr run`
    runs them, until the source ends (or `max_seconds`): frames delivered, processed, dropped, CPU."""
    stop = threading.Event()
    channel = QueueChannel()
    worker = CameraWorker(cfg, CameraConfig(name=source.camera, source="replay", path="scene"), recognizer,
                          channel, calibration, stop, source=source)
    hub = Hub(db, calibration, cfg.pipeline)
    thread = threading.Thread(target=worker.run, name="bench-camera", daemon=True)
    timer = threading.Timer(max_seconds, stop.set) if max_seconds else None
    with CpuMeter() as cpu:
        thread.start()
        if timer is not None:
            timer.start()
        run_hub(hub, channel, stop, until=lambda: not thread.is_alive())
        stop.set()
        thread.join(10.0)
    if timer is not None:
        timer.cancel()
    s = worker.summary
    delivered = source.stats.frames
    return {"camera_fps": source.fps, "frames_delivered": delivered, "frames_processed": s.frames,
            "frames_dropped": s.dropped, "frames_idle": s.idle,
            "drop_rate": round(s.dropped / delivered, 4) if delivered else 0.0,
            "fps": round(s.fps, 2), "seconds": round(s.seconds, 2), "cpu": cpu.as_dict(),
            "faces_seen": s.counters.get("faces_seen", 0), "alerts_recorded": hub.totals.alerts_recorded}
