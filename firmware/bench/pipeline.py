"""`lfr bench pipeline`: the live pipeline on the LFW replay scene and on real videos.

Three measurements, each in a throwaway state directory (temporary database, deployment, watchlist):
- scene: every frame of the acceptance scene (people walking past, some on the watchlist with a different
  photo) through the camera pipeline and the hub: per-stage timings, frames per second, tracks per person,
  alerts, false alerts;
- live: the same scene replayed at the camera rate through the capture thread, the newest-frame slot and the
  camera worker with the hub: frames processed, dropped and fps, as on the van;
- videos: real clips (every frame) for faces seen and fps.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from firmware.bench.scene_run import SCENE_FPS, acceptance_scene, run_scene, scene_background
from firmware.bench.testbed import add_watchlist, open_deployment
from firmware.capture.frame import Frame
from firmware.capture.replay import ReplaySource
from firmware.capture.scene import SceneSource, lfw_people
from firmware.config import AppConfig, CameraConfig, PathsConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError
from firmware.match.score import ScoreCalibration
from firmware.pipeline.camera import CameraPipeline
from firmware.pipeline.channel import QueueChannel
from firmware.pipeline.hub import Hub
from firmware.pipeline.runner import CameraWorker, run_hub
from firmware.pipeline.watchlist_watch import WatchlistWatcher
from firmware.store.db import open_config_db

DEFAULT_VIDEOS = ("video/short_hamilton_clip.mp4", "video/MOT17-13-SDP-raw.h265")


def _state(cfg: AppConfig, directory: str) -> AppConfig:
    return replace(cfg, paths=PathsConfig(state_dir=directory, config_dir=directory))


def bench_scene(cfg: AppConfig, recognizer: Recognizer, calibration: ScoreCalibration, data_dir: Path, *,
                people: int, watchlisted: int, live_seconds: float = 0.0) -> dict[str, Any]:
    """The acceptance scene offline (every frame) and, if `live_seconds` > 0, replayed live at 15 fps."""
    background = scene_background(data_dir, recognizer)
    scene, watchlist = acceptance_scene(data_dir / "lfw", background, people=people, watchlisted=watchlisted)
    with tempfile.TemporaryDirectory(prefix="lfr-bench-") as tmp:
        run_cfg = _state(cfg, tmp)
        db = open_config_db(run_cfg)
        try:
            dep = open_deployment(db, threshold=cfg.match.threshold)
            add_watchlist(db, dep, recognizer, watchlist)
            result: dict[str, Any] = {"scene": run_scene(run_cfg, recognizer, scene, db, calibration,
                                                         watchlisted={n for n, _ in watchlist}).as_dict()}
            if live_seconds > 0:
                live = SceneSource(scene, fps=SCENE_FPS)
                result["live"] = _live(run_cfg, recognizer, calibration, db, live,
                                       max_seconds=live_seconds)
        finally:
            db.close()
    return result


def _live(cfg: AppConfig, recognizer: Recognizer, calibration: ScoreCalibration, db: Any, source: SceneSource,
          *, max_seconds: float) -> dict[str, Any]:
    """Camera worker (capture thread + newest-frame slot) and hub in threads, as `lfr run` runs them."""
    stop = threading.Event()
    channel = QueueChannel()
    worker = CameraWorker(cfg, CameraConfig(name="scene", source="replay", path="scene"), recognizer, channel,
                          calibration, stop, source=source)
    hub = Hub(db, calibration, cfg.pipeline)
    thread = threading.Thread(target=worker.run, name="bench-camera", daemon=True)
    thread.start()
    timer = threading.Timer(max_seconds, stop.set)
    timer.start()
    run_hub(hub, channel, stop, until=lambda: not thread.is_alive())
    stop.set()
    timer.cancel()
    thread.join(10.0)
    s = worker.summary
    return {"camera_fps": SCENE_FPS, "frames_delivered": s.frames + s.dropped, "frames_processed": s.frames,
            "frames_dropped": s.dropped, "fps": round(s.fps, 2), "seconds": round(s.seconds, 2),
            "faces_seen": s.counters.get("faces_seen", 0), "alerts_recorded": hub.totals.alerts_recorded}


def bench_video(cfg: AppConfig, recognizer: Recognizer, calibration: ScoreCalibration, video: Path,
                watchlist_dir: Path, *, max_frames: int | None = None) -> dict[str, Any]:
    """Every frame of `video` through the pipeline (a 10-person LFW watchlist loaded): faces seen, fps."""
    if not video.exists():
        raise DataError(f"video {video} not found")
    with tempfile.TemporaryDirectory(prefix="lfr-bench-") as tmp:
        run_cfg = _state(cfg, tmp)
        db = open_config_db(run_cfg)
        try:
            dep = open_deployment(db, threshold=cfg.match.threshold)
            add_watchlist(db, dep, recognizer, [(p.name, p.photos[0])
                                                for p in lfw_people(watchlist_dir, min_photos=3)[:10]])
            channel = QueueChannel(maxsize=100_000)
            pipeline = CameraPipeline("video", recognizer, run_cfg, channel)
            pipeline.set_watchlist(WatchlistWatcher(db, calibration).current())
            source = ReplaySource(video, camera="video", fps=0)
            source.open()
            frames, size, started = 0, "", time.perf_counter()
            try:
                while max_frames is None or frames < max_frames:
                    frame: Frame | None = source.read(1.0)
                    if frame is None:
                        break
                    pipeline.process(frame)
                    frames += 1
                    size = f"{frame.image.shape[1]}x{frame.image.shape[0]}"
            finally:
                source.close()
            seconds = time.perf_counter() - started
            pipeline.flush_stats()
        finally:
            db.close()
    return {"video": video.name, "frames": frames, "size": size, "seconds": round(seconds, 2),
            "fps": round(frames / seconds, 2) if seconds else 0.0,
            "faces_detected": pipeline.totals["faces_detected"], "faces_seen": pipeline.totals["faces_seen"],
            "embeddings": pipeline.totals["embeddings"], "alerts": pipeline.alerts_sent,
            "timings": pipeline.total_timings.summary()}
