"""The pipeline and hub on real LFW faces walking past: tracks, alerts in the database, stats, hot swap."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlite_utils

from firmware.bench.scene_run import acceptance_scene, run_scene
from firmware.bench.testbed import add_watchlist, enrol_photo
from firmware.capture.frame import Frame
from firmware.capture.scene import Person, SceneSource, build_scene, lfw_people
from firmware.config import AppConfig, CameraConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import PolicyError
from firmware.link.messages import Alert
from firmware.match.score import ScoreCalibration
from firmware.pipeline.camera import CameraPipeline
from firmware.pipeline.channel import QueueChannel
from firmware.pipeline.hub import Hub
from firmware.pipeline.messages import AlertCandidate
from firmware.pipeline.runner import CameraWorker, run_hub
from firmware.pipeline.watchlist_watch import WatchlistWatcher
from firmware.store import audit
from firmware.store.stats import read_stats
from pipeline.pipeline_helpers import ready_db


class Alerts:
    def __init__(self) -> None:
        self.got: list[Alert] = []

    def alert_recorded(self, alert: Alert) -> None:
        self.got.append(alert)


@pytest.mark.slow
def test_acceptance_subset_one_track_per_person_alerts_for_the_watchlisted(
        cfg: AppConfig, db: sqlite_utils.Database, recognizer: Recognizer, calibration: ScoreCalibration,
        lfw_dir: Path, background: np.ndarray) -> None:
    """40 people walk past, 8 enrolled from a different photo: the fast subset of the acceptance scene
    (`lfr bench pipeline` runs the full 200)."""
    scene, watchlist = acceptance_scene(lfw_dir, background, people=40, watchlisted=8, seed=3)
    dep = ready_db(db, recognizer, watchlist)
    sink = Alerts()
    r = run_scene(cfg, recognizer, scene, db, calibration, watchlisted={n for n, _ in watchlist},
                  alert_sink=sink)
    assert r.people_several_tracks == 0
    assert r.people_no_track <= 1
    assert r.false_alerts == 0
    assert r.people_alerted_twice == 0
    assert r.true_alerts >= 3, f"{r.true_alerts} of 8 watchlisted people alerted"
    # each alert is stored with its outbox message and audit row, and told to the sink with the subject
    rows = db.execute("SELECT id, subject_id, probe_jpeg, reference_jpeg FROM alerts").fetchall()
    assert len(rows) == len(sink.got) == r.alerts
    outbox = {row[0] for row in db.execute("SELECT alert_id FROM outbox")}
    assert outbox == {row[0] for row in rows}
    assert all(row[2][:3] == b"\xff\xd8\xff" and row[3] for row in rows)
    assert {a.subject_id for a in sink.got} <= {n for n, _ in watchlist}
    assert audit.verify(db).ok
    audited = db.execute("SELECT count(*) FROM audit WHERE action = 'alert'").fetchone()[0]
    assert audited == r.alerts
    stats = read_stats(db, dep)
    assert stats["frames"] == len(scene) and stats["alerts"] == r.alerts
    assert stats["faces_seen"] == r.counters["faces_seen"] >= 39
    assert stats["embeddings"] == r.counters["embeddings"] > 0


def test_hub_refuses_to_scan_without_deployment_or_watchlist(
        db: sqlite_utils.Database, recognizer: Recognizer, calibration: ScoreCalibration, cfg: AppConfig,
        lfw_dir: Path) -> None:
    hub = Hub(db, calibration, cfg.pipeline)
    with pytest.raises(PolicyError, match="no open deployment"):
        hub.require_ready()
    from firmware.bench.testbed import open_deployment
    dep = open_deployment(db)
    with pytest.raises(PolicyError, match="no watchlist"):
        hub.require_ready()
    person = lfw_people(lfw_dir, min_photos=3)[0]
    add_watchlist(db, dep, recognizer, [(person.name, person.photos[0])])
    assert hub.require_ready().id == dep


def test_camera_does_not_scan_without_a_watchlist(cfg: AppConfig, recognizer: Recognizer,
                                                  background: np.ndarray) -> None:
    channel = QueueChannel()
    pipeline = CameraPipeline("cam0", recognizer, cfg, channel)
    report = pipeline.process(Frame("cam0", 0, background, 1.0, 1.0))
    assert report.detections == 0 and pipeline.totals["frames"] == 0
    assert channel.receive(0.01) is None, "no preview either"


def test_alert_for_a_subject_no_longer_listed_is_refused(
        cfg: AppConfig, db: sqlite_utils.Database, recognizer: Recognizer, calibration: ScoreCalibration,
        lfw_dir: Path) -> None:
    person = lfw_people(lfw_dir, min_photos=3)[0]
    ready_db(db, recognizer, [(person.name, person.photos[0])])
    hub = Hub(db, calibration, cfg.pipeline)
    hub.require_ready()
    hub.handle(AlertCandidate("cam0", 1, "someone-else", 0.9, 2, 1.0, 1.0, 1, "v", b"\xff\xd8\xffx"))
    assert hub.totals.alerts_refused == 1
    assert db.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
    hub.handle(AlertCandidate("cam0", 2, person.name, 0.9, 2, 1.0, 1.0, 1, "v", b"\xff\xd8\xffx"))
    hub.handle(AlertCandidate("cam1", 9, person.name, 0.9, 2, 2.0, 2.0, 5, "v", b"\xff\xd8\xffx"))
    assert hub.totals.alerts_recorded == 1 and hub.totals.alerts_cooled == 1, "cooldown across cameras"


def test_watchlist_hot_swap_between_frames(
        cfg: AppConfig, db: sqlite_utils.Database, recognizer: Recognizer, calibration: ScoreCalibration,
        lfw_dir: Path, background: np.ndarray) -> None:
    """A person not on the list walks past unnoticed; once an import adds them, the next pass alerts."""
    people = lfw_people(lfw_dir, min_photos=4)[:12]
    other = people[0]

    def likeness(p: Person) -> float:  # a person whose photos look alike, so the second pass surely matches
        ref = enrol_photo(recognizer, p.photos[0])
        return min(float(ref @ enrol_photo(recognizer, q)) for q in p.photos[1:3])

    target = max(people[1:], key=likeness)
    dep = ready_db(db, recognizer, [(other.name, other.photos[0])])
    watcher = WatchlistWatcher(db, calibration, poll_s=0.0)
    channel = QueueChannel(maxsize=10_000)
    pipeline = CameraPipeline("cam0", recognizer, cfg, channel)
    from firmware.capture.scene import Person
    walker = Person(target.name, target.photos[1:3])
    scene = build_scene([walker, walker], background, lanes=1, gap_frames=20)
    alerts: list[AlertCandidate] = []
    first_version = watcher.current().version  # type: ignore[union-attr]
    for i in range(len(scene)):
        if i == scene.walkers[1].first_frame - 5:
            add_watchlist(db, dep, recognizer, [(target.name, target.photos[0])])
        pipeline.set_watchlist(watcher.current())
        alerts += pipeline.process(Frame("cam0", i, scene.frame(i), i / 15.0, i / 15.0)).alerts
    assert watcher.current().version != first_version  # type: ignore[union-attr]
    assert [a.subject_id for a in alerts] == [target.name]
    assert alerts[0].frame_index >= scene.walkers[1].first_frame


@pytest.mark.slow
def test_worker_and_hub_threads_flush_stats_and_stop_cleanly(
        cfg: AppConfig, db: sqlite_utils.Database, recognizer: Recognizer, calibration: ScoreCalibration,
        lfw_dir: Path, background: np.ndarray) -> None:
    """The live arrangement of `lfr run`: capture thread, newest-frame slot, worker, hub, stop event."""
    scene, watchlist = acceptance_scene(lfw_dir, background, people=9, watchlisted=3, seed=1)
    dep = ready_db(db, recognizer, watchlist)
    stop = threading.Event()
    channel = QueueChannel()
    worker = CameraWorker(cfg, CameraConfig(name="cam0", source="replay", path="x"), recognizer, channel,
                          calibration, stop, source=SceneSource(scene, camera="cam0", fps=30.0))
    hub = Hub(db, calibration, cfg.pipeline)
    thread = threading.Thread(target=worker.run)
    thread.start()
    run_hub(hub, channel, stop, until=lambda: not thread.is_alive())
    thread.join(5)
    assert not thread.is_alive()
    s = worker.summary
    assert s.frames + s.dropped == len(scene) and s.frames > 0
    stats = read_stats(db, dep)
    assert stats["frames"] == s.frames and stats["dropped_frames"] == s.dropped
    assert stats["faces_seen"] == s.counters["faces_seen"] > 0
    assert hub.totals.previews > 0
    assert set(s.timings) >= {"detect", "track", "frame"}


def test_detects_on_lores_and_cuts_the_probe_from_the_full_resolution_frame(
        cfg: AppConfig, db: sqlite_utils.Database, recognizer: Recognizer, calibration: ScoreCalibration,
        lfw_dir: Path, background: np.ndarray) -> None:
    """picamera2 arrangement: detection on the 640×360 lores stream, crop from the 1920×1080 main stream."""
    people = lfw_people(lfw_dir, min_photos=4)[:12]

    def likeness(p: Person) -> float:
        ref = enrol_photo(recognizer, p.photos[0])
        return min(float(ref @ enrol_photo(recognizer, q)) for q in p.photos[1:3])

    target = max(people, key=likeness)
    ready_db(db, recognizer, [(target.name, target.photos[0])])
    pipeline = CameraPipeline("cam0", recognizer, cfg, QueueChannel(maxsize=10_000))
    pipeline.set_watchlist(WatchlistWatcher(db, calibration).current())
    scene = build_scene([Person(target.name, target.photos[1:3])], background, lanes=1)
    alerts: list[AlertCandidate] = []
    for i in range(len(scene)):
        lores = scene.frame(i)
        main = cv2.resize(lores, (1920, 1080), interpolation=cv2.INTER_LINEAR)
        alerts += pipeline.process(Frame("cam0", i, main, i / 15.0, i / 15.0, lores=lores)).alerts
    (alert,) = alerts
    crop = cv2.imdecode(np.frombuffer(alert.probe_jpeg, np.uint8), cv2.IMREAD_COLOR)
    face = scene.appearances(alert.frame_index)[0].box
    side_main = (face[2] - face[0]) * 3  # lores → main is ×3
    assert crop.shape[0] > 0.8 * side_main, "the crop has main-stream resolution, not lores"


def test_a_standing_crowd_is_not_meshed_every_frame_once_its_tracks_hold_their_shots(
        cfg: AppConfig, db: sqlite_utils.Database, recognizer: Recognizer, calibration: ScoreCalibration,
        lfw_dir: Path, background: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (issue 7 profile): every tracked, undecided face was mesh-aligned and quality-checked on every
    frame (2.6 ms a face) though its track already held its shots. With `relook_frames` = 3 a settled track
    is looked at every third frame: the same people are tracked and embedded, for a third of the mesh runs."""
    from firmware.capture.compose import PanningStill, compose

    people = lfw_people(lfw_dir, min_photos=3)[:6]
    ready_db(db, recognizer, [(people[0].name, people[0].photos[0])])
    crowd = [p.photos[1] for p in people[1:]]  # nobody here is on the list: no track gets decided
    view = PanningStill([compose(cv2.resize(background, (960, 540)), crowd, face_px=150, margin_px=30)], 45)
    frames = [view.frame(i) for i in range(len(view))]
    face = recognizer.face
    meshed: list[int] = []

    def counting_face(image: np.ndarray, det: object) -> object:
        meshed[-1] += 1
        return face(image, det)  # type: ignore[arg-type]

    monkeypatch.setattr(recognizer, "face", counting_face)
    runs = {}
    for relook in (1, 3):
        meshed.append(0)
        run_cfg = replace(cfg, pipeline=replace(cfg.pipeline, relook_frames=relook))
        pipeline = CameraPipeline("cam0", recognizer, run_cfg, QueueChannel(maxsize=10_000))
        pipeline.set_watchlist(WatchlistWatcher(db, calibration).current())
        for i, image in enumerate(frames):
            assert not pipeline.process(Frame("cam0", i, image, i / 15.0, i / 15.0)).alerts
        runs[relook] = (meshed[-1], pipeline.totals["embeddings"], pipeline.tracker.stats.faces_seen)
    (every, emb_every, seen_every), (third, emb_third, seen_third) = runs[1], runs[3]
    assert seen_every == seen_third >= len(crowd)
    assert emb_third >= len(crowd) * 2, "each person still gets their min_shots faces"
    assert abs(emb_third - emb_every) <= 2, "about the same better shots are taken"
    assert third <= 0.45 * every, runs
