"""`lfr bench pipeline`: the live loop on the LFW replay scene and the shared videos (figures in
docs/pipeline.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from firmware.cli.bench_enrol import default_images
from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.embed.recognizer import Recognizer
from firmware.pipeline.runner import calibration_for


def register(bsub: argparse._SubParsersAction) -> None:
    pipe = bsub.add_parser("pipeline", help="the live pipeline on the LFW replay scene and the shared videos")
    add_config_argument(pipe)
    add_json_argument(pipe)
    pipe.add_argument("--data", type=Path,
                      help="shared data folder (default: $LFR_TEST_DATA or ../shared/data)")
    pipe.add_argument("--people", type=int, default=200, help="people walking past (default 200)")
    pipe.add_argument("--watchlisted", type=int, default=20, help="of whom on the watchlist (default 20)")
    pipe.add_argument("--live-seconds", type=float, default=20.0,
                      help="seconds of the scene replayed live at 15 fps for drops (default 20; 0 = skip)")
    pipe.add_argument("--video", type=Path, action="append",
                      help="video to run end to end (repeatable; default: the two shared clips)")
    pipe.add_argument("--video-frames", type=int, help="at most this many frames per video")
    pipe.set_defaults(func=_pipeline)


def _data_dir(args: argparse.Namespace) -> Path:
    """--data, else the shared data folder `lfr bench enrol` uses ($LFR_TEST_DATA or ../shared/data)."""
    return Path(args.data) if args.data else default_images().parent.parent


def _pipeline(args: argparse.Namespace) -> int:
    from firmware.bench.pipeline import DEFAULT_VIDEOS, bench_scene, bench_video

    cfg = app_config(args)
    data = _data_dir(args)
    recognizer = Recognizer.from_config(cfg)
    calibration = calibration_for(cfg)
    result: dict[str, Any] = {"accelerator": recognizer.health()}
    result.update(bench_scene(cfg, recognizer, calibration, data, people=args.people,
                              watchlisted=args.watchlisted, live_seconds=args.live_seconds))
    videos = args.video or [data / v for v in DEFAULT_VIDEOS]
    result["videos"] = [bench_video(cfg, recognizer, calibration, v, data / "lfw",
                                    max_frames=args.video_frames)
                        for v in videos]
    emit(args, result, _text(result))
    return 0


def _text(r: dict[str, Any]) -> str:
    s = r["scene"]
    lines = [f"scene: {s['people']} people ({s['watchlisted']} on the watchlist), {s['frames']} frames at "
             f"{s['fps']} fps",
             f"  tracks: {s['people_one_track']} people with exactly one, {s['people_several_tracks']} with "
             f"several, {s['people_no_track']} with none",
             f"  alerts: {s['alerts']} ({s['true_alerts']} right, "
             f"{s['watchlisted_missed']} watchlisted missed, "
             f"{s['false_alerts']} false = {100 * s['false_alert_rate']:.2f} % of the others, "
             f"{s['people_alerted_twice']} people alerted twice)",
             "  per stage (mean / max ms): " + ", ".join(
                 f"{k} {v['mean_ms']:.1f}/{v['max_ms']:.0f} ({v['calls']})" for k, v in s["timings"].items())]
    if "live" in r:
        v = r["live"]
        lines.append(f"live at {v['camera_fps']:.0f} fps: {v['frames_processed']} processed, "
                     f"{v['frames_dropped']} "
                     f"dropped, {v['fps']} fps")
    for v in r.get("videos", []):
        lines.append(f"{v['video']} ({v['size']}): {v['frames']} frames at {v['fps']} fps, "
                     f"{v['faces_seen']} faces "
                     f"seen, {v['faces_detected']} detections, {v['alerts']} alert(s)")
    return "\n".join(lines)
