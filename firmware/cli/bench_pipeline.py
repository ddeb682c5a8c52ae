"""`lfr bench pipeline`: the live pipeline end to end. `--what matrix` (default): fps, CPU and drops at 30 fps
against frame size, faces per frame and threads, plus the peak RSS of an appliance-like process on the 1080p
scene; `--what scene`: the LFW walking scene (tracks, alerts) offline and live; `--what videos`: the shared
clips (figures in docs/benchmarks.md and docs/pipeline.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from firmware.bench.matrix import DEFAULT_FACES, DEFAULT_SIZES, DEFAULT_THREADS, MatrixSpec
from firmware.bench.memory import MIB, peak_rss_bytes
from firmware.cli.bench_enrol import default_images
from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.errors import LfrError
from firmware.pipeline.runner import calibration_for

WHATS = ("matrix", "scene", "videos")


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if min(values) < 1:
        raise argparse.ArgumentTypeError(f"every value must be at least 1, got {text!r}")
    return values


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    try:
        sizes = tuple((int(w), int(h)) for w, h in (s.lower().split("x") for s in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT[,WIDTHxHEIGHT...], got {text!r}") from None
    if min(min(s) for s in sizes) < 64:
        raise argparse.ArgumentTypeError(f"frames must be at least 64 pixels each way, got {text!r}")
    return sizes


def _tiles(text: str) -> tuple[int, int]:
    try:
        cols, rows = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected COLSxROWS, e.g. 3x2, got {text!r}") from None
    if not (1 <= cols <= 4 and 1 <= rows <= 4):
        raise argparse.ArgumentTypeError(f"tiles must be 1 to 4 each way, got {text!r}")
    return cols, rows


def _fmt(values: tuple[Any, ...]) -> str:
    return ",".join(f"{v[0]}x{v[1]}" if isinstance(v, tuple) else str(v) for v in values)


def register(bsub: argparse._SubParsersAction) -> None:
    pipe = bsub.add_parser("pipeline", help="the live pipeline end to end: fps, CPU, drops and RSS against "
                                            "frame size, faces and threads; the LFW walking scene; videos")
    add_config_argument(pipe)
    add_json_argument(pipe)
    pipe.add_argument("--data", type=Path,
                      help="shared data folder (default: $LFR_TEST_DATA or ../shared/data)")
    pipe.add_argument("--what", choices=WHATS, action="append",
                      help="what to measure (repeatable; default: matrix)")
    m = pipe.add_argument_group("matrix")
    m.add_argument("--sizes", type=_sizes, default=DEFAULT_SIZES,
                   help=f"frame sizes (default {_fmt(DEFAULT_SIZES)})")
    m.add_argument("--faces", type=_ints, default=DEFAULT_FACES,
                   help=f"faces per frame (default {_fmt(DEFAULT_FACES)})")
    m.add_argument("--threads", type=_ints, default=DEFAULT_THREADS,
                   help=f"inference threads, models.threads (default {_fmt(DEFAULT_THREADS)})")
    m.add_argument("--frames", type=int, default=60, help="frames measured per cell and run (default 60)")
    m.add_argument("--warmup", type=int, default=10,
                   help="frames processed before the throughput is measured (default 10)")
    m.add_argument("--camera-fps", type=float, default=30.0,
                   help="rate of the source in the drop-rate run (default 30)")
    m.add_argument("--tiles", type=_tiles, default=(3, 2),
                   help="detection tiles COLSxROWS when the configuration has none (default 3x2)")
    m.add_argument("--churn-frames", type=int, default=0,
                   help="replace the people in view with another group every N frames (default 0: the same "
                        "people throughout)")
    m.add_argument("--no-live", action="store_true", help="skip the drop-rate run at --camera-fps")
    m.add_argument("--rss-frames", type=int, default=60,
                   help="frames of the 1080p, --rss-faces scene run in a child process sampled for peak RSS "
                        "(default 60; 0 = skip)")
    m.add_argument("--rss-faces", type=int, default=10, help="faces in the RSS run's scene (default 10)")
    m.add_argument("--plot", type=Path, help="write the fps vs faces per frame chart (PNG) here")
    s = pipe.add_argument_group("scene and videos")
    s.add_argument("--people", type=int, default=200, help="scene: people walking past (default 200)")
    s.add_argument("--watchlisted", type=int, default=20, help="scene: of whom on the watchlist (default 20)")
    s.add_argument("--list-size", type=int, default=0,
                   help="scene: fill the watchlist to this many entries with people who do not walk past, "
                        "its threshold set by match.policy as an import would (default: only the watchlisted)")
    s.add_argument("--photos", type=int, default=1,
                   help="scene with --list-size: reference photos fused per entry where people have them (1-5)")
    s.add_argument("--live-seconds", type=float, default=20.0,
                   help="scene: seconds replayed live at 15 fps for drops (default 20; 0 = skip)")
    s.add_argument("--video", type=Path, action="append",
                   help="videos: a video to run end to end (repeatable; default: the two shared clips)")
    s.add_argument("--video-frames", type=int, help="videos: at most this many frames per video")
    pipe.set_defaults(func=_pipeline)


def _data_dir(args: argparse.Namespace) -> Path:
    """--data, else the shared data folder `lfr bench enrol` uses ($LFR_TEST_DATA or ../shared/data)."""
    return Path(args.data) if args.data else default_images().parent.parent


def _pipeline(args: argparse.Namespace) -> int:
    from firmware.bench.appliance_rss import appliance_rss
    from firmware.bench.matrix import run_matrix
    from firmware.bench.pipeline import DEFAULT_VIDEOS, bench_scene, bench_video
    from firmware.embed.recognizer import Recognizer

    cfg = app_config(args, state=False)
    data = _data_dir(args)
    calibration = calibration_for(cfg)
    whats = args.what or ["matrix"]
    try:
        spec = MatrixSpec(sizes=args.sizes, faces=args.faces, threads=args.threads, frames=args.frames,
                          warmup=args.warmup, camera_fps=args.camera_fps, tiles=args.tiles,
                          live=not args.no_live, churn_frames=args.churn_frames)
    except ValueError as exc:
        raise LfrError(str(exc)) from None
    result: dict[str, Any] = {}
    if "matrix" in whats:
        result["matrix"] = run_matrix(cfg, calibration, data, spec)
        if args.plot:
            from firmware.bench.plots import plot_fps_vs_faces

            plot_fps_vs_faces(result["matrix"], args.plot)
        if args.rss_frames > 0:
            result["appliance_rss"] = appliance_rss(
                data, Path(args.config) if args.config else None, faces=args.rss_faces,
                threads=cfg.models.threads, frames=args.rss_frames, camera_fps=args.camera_fps, tiles=args.tiles,
                churn_frames=args.churn_frames)
    if "scene" in whats or "videos" in whats:
        recognizer = Recognizer.from_config(cfg)
        result["accelerator"] = recognizer.health()
        if "scene" in whats:
            result.update(bench_scene(cfg, recognizer, calibration, data, people=args.people,
                                      watchlisted=args.watchlisted, live_seconds=args.live_seconds,
                                      list_size=args.list_size, photos=args.photos))
        if "videos" in whats:
            videos = args.video or [data / v for v in DEFAULT_VIDEOS]
            result["videos"] = [bench_video(cfg, recognizer, calibration, v, data / "lfw",
                                            max_frames=args.video_frames) for v in videos]
    result["process_peak_rss_mib"] = peak_rss_bytes() / MIB
    emit(args, result, _text(result))
    return 0


def _matrix_text(m: dict[str, Any]) -> list[str]:
    sp = m["spec"]
    churn = f"new people every {sp['churn_frames']} frames" if sp["churn_frames"] else "the same people throughout"
    lines = [f"matrix: {sp['frames']} frames a cell after {sp['warmup']} warm-up, {churn}, tiles "
             f"{sp['tiles'][0]}x{sp['tiles'][1]} from {sp['tile_min_width']} px wide; live run at "
             f"{sp['camera_fps']:g} fps",
             f"{'size':>9} {'faces':>5} {'thr':>3} {'fps':>7} {'CPU %1core':>10} {'%all':>5} {'det/frame':>9} "
             f"{'embeds':>6} | {'live fps':>8} {'dropped':>13} {'drop rate':>9}"]
    for c in m["cells"]:
        t = c["throughput"]
        row = (f"{c['size']:>9} {c['faces']:>5} {c['threads']:>3} {t['fps']:>7.2f} "
               f"{t['cpu']['cpu_pct_one_core']:>10.0f} {t['cpu']['cpu_pct_all_cores']:>5.0f} "
               f"{t['faces_detected_per_frame']:>9.1f} {t['embeddings']:>6}")
        if "live" in c:
            v = c["live"]
            row += (f" | {v['fps']:>8.2f} {v['frames_dropped']:>6}/{v['frames_delivered']:<6} "
                    f"{100 * v['drop_rate']:>8.1f}%")
        lines.append(row)
    return lines


def _text(r: dict[str, Any]) -> str:
    lines: list[str] = []
    if "matrix" in r:
        lines += _matrix_text(r["matrix"])
    if "appliance_rss" in r:
        a = r["appliance_rss"]
        lines.append(f"peak RSS of the appliance-like process on the {a['size']} scene with {a['faces']} faces, "
                     f"{a['threads']} threads: {a['peak_rss_mib']:.0f} MiB sampled from outside "
                     f"({a['child_reported_peak_rss_mib']:.0f} MiB by its own ru_maxrss)")
    if "scene" in r:
        s = r["scene"]
        lines += [f"scene: {s['people']} people ({s['watchlisted']} on the watchlist), {s['frames']} frames at "
                  f"{s['fps']} fps",
                  f"  tracks: {s['people_one_track']} people with exactly one, {s['people_several_tracks']} "
                  f"with several, {s['people_no_track']} with none",
                  f"  alerts: {s['alerts']} ({s['true_alerts']} right, "
                  f"{s['watchlisted_missed']} watchlisted missed, "
                  f"{s['false_alerts']} false = {100 * s['false_alert_rate']:.2f} % of the others, "
                  f"{s['people_alerted_twice']} people alerted twice)",
                  "  per stage (mean / max ms): " + ", ".join(
                      f"{k} {v['mean_ms']:.1f}/{v['max_ms']:.0f} ({v['calls']})"
                      for k, v in s["timings"].items())]
    if "live" in r:
        v = r["live"]
        lines.append(f"live at {v['camera_fps']:.0f} fps: {v['frames_processed']} processed, "
                     f"{v['frames_dropped']} dropped, {v['fps']} fps")
    for v in r.get("videos", []):
        lines.append(f"{v['video']} ({v['size']}): {v['frames']} frames at {v['fps']} fps, "
                     f"{v['faces_seen']} faces seen, {v['faces_detected']} detections, {v['alerts']} alert(s)")
    return "\n".join(lines)
