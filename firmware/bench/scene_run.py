"""Run a replay scene through the real camera pipeline and hub, and score it against the ground truth.

Every frame is processed (offline, no drops), so the figures are repeatable: which people got a confirmed
track (and how many), which alerts the hub recorded in the database and whether each was the right person.
Track boxes are matched to the ground truth in memory only, for scoring; nothing of them is written.
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from firmware.capture.compose import blur_faces, read_background
from firmware.capture.frame import Frame
from firmware.capture.scene import Person, Scene, build_scene, lfw_people
from firmware.config import AppConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError
from firmware.hardware.clock import FakeClock
from firmware.match.score import ScoreCalibration
from firmware.pipeline.camera import CameraPipeline, FrameReport
from firmware.pipeline.channel import QueueChannel
from firmware.pipeline.hub import AlertSink, Hub, PreviewSink
from firmware.pipeline.watchlist_watch import WatchlistWatcher

SCENE_FPS = 15.0
SCENE_T0_WALL = 1_767_225_600.0  # frame i of a scene run is stamped SCENE_T0_WALL + i / SCENE_FPS


def scene_index(t_wall: float) -> int:
    """The scene frame a message stamped `t_wall` (e.g. a preview) came from."""
    return round((t_wall - SCENE_T0_WALL) * SCENE_FPS)
BACKGROUND_VIDEO = "video/MOT17-13-SDP-raw.h265"


@dataclass
class SceneResult:
    """Figures of one scene run (see the module docstring); `alerts_*` count alert rows in the database."""

    people: int
    watchlisted: int
    frames: int
    seconds: float
    fps: float
    people_one_track: int
    people_no_track: int
    people_several_tracks: int
    alerts: int
    true_alerts: int
    watchlisted_missed: int
    false_alerts: int
    false_alert_rate: float
    people_alerted_twice: int
    counters: dict[str, int] = field(default_factory=dict)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scene_background(data_dir: Path, recognizer: Recognizer, size: tuple[int, int] = (640, 360)) -> Any:
    """A street frame from the shared MOT17 clip, `size` (width, height), with any face in it blurred."""
    video = data_dir / BACKGROUND_VIDEO
    if not video.exists():
        raise DataError(f"background video {video} not found")
    return blur_faces(read_background(video, size), lambda im: [d.box for d in recognizer.detect(im)])


def large_list_people(lfw_dir: Path, *, people: int, watchlisted: int, list_size: int, photos: int,
                      seed: int = 0) -> tuple[list[Person], list[tuple[str, list[Path]]]]:
    """The acceptance scene against a real-size list: `watchlisted` walkers with ≥ 3 photos enrolled from up
    to `photos` of them (always keeping their last 2 photos, never enrolled, to walk past with); the list
    filled to `list_size` with other LFW people (up to `photos` photos each) who do not walk past; the other
    walkers are on no list."""
    rng = random.Random(seed)
    candidates = lfw_people(lfw_dir, min_photos=3)
    listed = rng.sample(candidates, watchlisted)
    names = {p.name for p in listed}
    everyone = [p for p in lfw_people(lfw_dir) if p.name not in names]
    rng.shuffle(everyone)
    strangers = everyone[:people - watchlisted]
    fillers = everyone[people - watchlisted:people - watchlisted + list_size - watchlisted]
    if len(fillers) < list_size - watchlisted:
        raise DataError(f"LFW at {lfw_dir} has too few people for a list of {list_size} and {people} walkers")
    walkers = [Person(p.name, p.photos[-2:]) for p in listed] + strangers
    rng.shuffle(walkers)
    entries = [(p.name, list(p.photos[:min(photos, len(p.photos) - 2)])) for p in listed]
    entries += [(p.name, list(p.photos[:photos])) for p in fillers]
    return walkers, entries


def acceptance_people(lfw_dir: Path, *, people: int, watchlisted: int,
                      seed: int = 0) -> tuple[list[Person], list[tuple[str, Path]]]:
    """Walkers (shuffled) and the watchlist: `watchlisted` people with ≥ 3 photos enrol their first photo and
    walk past with their others (a DIFFERENT photo); the rest are distinct people not on the list."""
    rng = random.Random(seed)
    candidates = lfw_people(lfw_dir, min_photos=3)
    if len(candidates) < watchlisted:
        raise DataError(f"LFW at {lfw_dir} has only {len(candidates)} people with 3 photos")
    listed = rng.sample(candidates, watchlisted)
    names = {p.name for p in listed}
    others = [p for p in lfw_people(lfw_dir) if p.name not in names]
    if len(others) < people - watchlisted:
        raise DataError(f"LFW at {lfw_dir} has only {len(others)} other people")
    walkers = [Person(p.name, p.photos[1:]) for p in listed] + rng.sample(others, people - watchlisted)
    rng.shuffle(walkers)
    return walkers, [(p.name, p.photos[0]) for p in listed]


def run_scene(cfg: AppConfig, recognizer: Recognizer, scene: Scene, db: sqlite_utils.Database,
              calibration: ScoreCalibration, *, watchlisted: set[str], alert_sink: AlertSink | None = None,
              preview_sink: PreviewSink | None = None,
              on_frame: Callable[[Frame, FrameReport], None] | None = None) -> SceneResult:
    """Process every frame of `scene` with a CameraPipeline and a Hub writing to `db`; score the result."""
    clock = FakeClock(wall=SCENE_T0_WALL)
    channel = QueueChannel(maxsize=100_000)
    hub = Hub(db, calibration, cfg.pipeline, clock=clock, alert_sink=alert_sink, preview_sink=preview_sink)
    hub.require_ready()
    pipeline = CameraPipeline("scene", recognizer, cfg, channel, clock=clock)
    pipeline.set_watchlist(WatchlistWatcher(db, calibration).current())
    tracks: dict[str, set[int]] = collections.defaultdict(set)
    track_person: dict[int, str] = {}
    started = time.perf_counter()
    for i in range(len(scene)):
        frame = Frame("scene", i, scene.frame(i), 1000.0 + i / SCENE_FPS, SCENE_T0_WALL + i / SCENE_FPS)
        report = pipeline.process(frame)
        _attribute(scene, report, tracks, track_person)
        if on_frame is not None:
            on_frame(frame, report)
        while (msg := channel.receive(0.0)) is not None:
            hub.handle(msg)
    seconds = time.perf_counter() - started
    pipeline.flush_stats()
    while (msg := channel.receive(0.0)) is not None:
        hub.handle(msg)
    hub.close()
    return _score(scene, db, watchlisted, tracks, track_person, seconds, pipeline)


def _attribute(scene: Scene, report: FrameReport, tracks: dict[str, set[int]],
               track_person: dict[int, str]) -> None:
    """A confirmed track names the person whose pasted face square holds its box centre, if the box is the
    main face of that square (a third of its side or more): some LFW photos show a second, smaller face of
    someone in the background, who is another person and rightly gets a track of their own."""
    for track_id, box, confirmed in report.tracks:
        if not confirmed:
            continue
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        for a in scene.appearances(report.index):
            main_face = box[2] - box[0] >= (a.box[2] - a.box[0]) / 3
            if main_face and a.box[0] <= cx <= a.box[2] and a.box[1] <= cy <= a.box[3]:
                tracks[a.person].add(track_id)
                track_person.setdefault(track_id, a.person)


def _score(scene: Scene, db: sqlite_utils.Database, watchlisted: set[str], tracks: dict[str, set[int]],
           track_person: dict[int, str], seconds: float, pipeline: CameraPipeline) -> SceneResult:
    people = [w.person for w in scene.walkers]
    counts = collections.Counter(len(tracks[p]) for p in people)
    rows = db.execute("SELECT track_id, subject_id FROM alerts").fetchall()
    per_person: collections.Counter[str] = collections.Counter()
    true_alerts = false_alerts = 0
    for track_id, subject_id in rows:
        person = track_person.get(int(track_id))
        per_person[person or f"?{track_id}"] += 1
        if person == subject_id and person in watchlisted:
            true_alerts += 1
        else:
            false_alerts += 1
    alerted_right = {track_person.get(int(t)) for t, s in rows if track_person.get(int(t)) == s}
    others = len(people) - len(watchlisted)
    return SceneResult(
        people=len(people), watchlisted=len(watchlisted), frames=len(scene), seconds=round(seconds, 3),
        fps=round(len(scene) / seconds, 2) if seconds else 0.0,
        people_one_track=counts[1], people_no_track=counts[0],
        people_several_tracks=sum(n for k, n in counts.items() if k > 1),
        alerts=len(rows), true_alerts=true_alerts, watchlisted_missed=len(watchlisted - alerted_right),
        false_alerts=false_alerts, false_alert_rate=round(false_alerts / others, 4) if others else 0.0,
        people_alerted_twice=sum(1 for n in per_person.values() if n > 1),
        counters=dict(pipeline.totals), timings=pipeline.total_timings.summary())


def acceptance_scene(lfw_dir: Path, background: Any, *, people: int, watchlisted: int, seed: int = 0,
                     **scene_kwargs: Any) -> tuple[Scene, list[tuple[str, Path]]]:
    """The acceptance scene: `people` walking past, `watchlisted` of them enrolled from another photo."""
    walkers, watchlist = acceptance_people(lfw_dir, people=people, watchlisted=watchlisted, seed=seed)
    return build_scene(walkers, background, **scene_kwargs), watchlist
