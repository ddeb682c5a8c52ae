"""`lfr bench pipeline`: the live pipeline on the LFW replay scene and on real videos.

Measurements of `--what scene` and `--what videos` (the matrix is `firmware.bench.matrix`), each in a
throwaway state directory (temporary database, deployment, watchlist):
- scene: every frame of the acceptance scene (people walking past, some on the watchlist with a different
  photo) through the camera pipeline and the hub: per-stage timings, frames per second, tracks per person,
  alerts, false alerts;
- live: the same scene replayed at the camera rate through the capture thread, the newest-frame slot and the
  camera worker with the hub: frames processed, dropped and fps, as on the van;
- videos: real clips (every frame) for faces seen and fps.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from firmware.bench.live import run_live
from firmware.bench.scene_run import SCENE_FPS, acceptance_scene, large_list_people, run_scene, scene_background
from firmware.bench.testbed import bench_state
from firmware.capture.frame import Frame
from firmware.capture.replay import ReplaySource
from firmware.capture.scene import SceneSource, build_scene, lfw_people
from firmware.config import AppConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError
from firmware.match.score import ScoreCalibration
from firmware.pipeline.camera import CameraPipeline
from firmware.pipeline.channel import QueueChannel
from firmware.pipeline.watchlist_watch import WatchlistWatcher
from firmware.watchlist.active import active_operating_point

DEFAULT_VIDEOS = ("video/short_hamilton_clip.mp4", "video/MOT17-13-SDP-raw.h265")


def bench_scene(cfg: AppConfig, recognizer: Recognizer, calibration: ScoreCalibration, data_dir: Path, *,
                people: int, watchlisted: int, live_seconds: float = 0.0, list_size: int = 0,
                photos: int = 1) -> dict[str, Any]:
    """The acceptance scene offline (every frame) and, if `live_seconds` > 0, replayed live at 15 fps.

    With `list_size`, the watchlisted walkers are enrolled from up to `photos` other photos each and the list is
    filled to `list_size` with people who do not walk past; the import's threshold policy sets the threshold."""
    background = scene_background(data_dir, recognizer)
    if list_size:
        walkers, entries = large_list_people(data_dir / "lfw", people=people, watchlisted=watchlisted,
                                             list_size=list_size, photos=photos)
        scene = build_scene(walkers, background)
        listed = {n for n, _ in entries[:watchlisted]}
        state = bench_state(cfg, recognizer, [], fused=entries, calibration=calibration)
    else:
        scene, watchlist = acceptance_scene(data_dir / "lfw", background, people=people, watchlisted=watchlisted)
        listed = {n for n, _ in watchlist}
        state = bench_state(cfg, recognizer, watchlist)
    with state as (run_cfg, db):
        result: dict[str, Any] = {"scene": run_scene(run_cfg, recognizer, scene, db, calibration,
                                                     watchlisted=listed).as_dict()}
        if list_size:
            result["operating_point"] = active_operating_point(db)
        if live_seconds > 0:
            result["live"] = run_live(run_cfg, recognizer, calibration, db, SceneSource(scene, fps=SCENE_FPS),
                                      max_seconds=live_seconds)
    return result


def bench_video(cfg: AppConfig, recognizer: Recognizer, calibration: ScoreCalibration, video: Path,
                watchlist_dir: Path, *, max_frames: int | None = None) -> dict[str, Any]:
    """Every frame of `video` through the pipeline (a 10-person LFW watchlist loaded): faces seen, fps."""
    if not video.exists():
        raise DataError(f"video {video} not found")
    watchlist = [(p.name, p.photos[0]) for p in lfw_people(watchlist_dir, min_photos=3)[:10]]
    with bench_state(cfg, recognizer, watchlist) as (run_cfg, db):
        pipeline = CameraPipeline("video", recognizer, run_cfg, QueueChannel(maxsize=100_000))
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
    return {"video": video.name, "frames": frames, "size": size, "seconds": round(seconds, 2),
            "fps": round(frames / seconds, 2) if seconds else 0.0,
            "faces_detected": pipeline.totals["faces_detected"], "faces_seen": pipeline.totals["faces_seen"],
            "embeddings": pipeline.totals["embeddings"], "alerts": pipeline.alerts_sent,
            "timings": pipeline.total_timings.summary()}
