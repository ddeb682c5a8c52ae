"""The hub's services and the faults a van meets: decisions resent, stop button, disk nearly full, camera gone,
locked database, clock steps, no Edge TPU. Real sqlite files, gpiozero's MockFactory, a recording link stub."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlite_utils

from firmware.config import AppConfig, GpioConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import LfrError, PolicyError, StorageError
from firmware.hardware.clock import FakeClock
from firmware.hardware.gpio import GpioIndicators
from firmware.hardware.indicators import NullIndicators, Pattern, pattern_for
from firmware.link.messages import Decision, HandheldEvent
from firmware.match.score import ScoreCalibration
from firmware.pipeline.hub import Hub
from firmware.pipeline.messages import AlertCandidate, PreviewFrame, StatsDelta
from firmware.pipeline.services import HubServices
from firmware.store import outbox

from .pipeline_helpers import LinkStub

PROBE = cv2.imencode(".jpg", np.full((32, 32, 3), 128, np.uint8))[1].tobytes()  # a grey square, no face


def candidate(t_mono: float, t_wall: float, track: int = 1) -> AlertCandidate:
    return AlertCandidate(camera="cam0", track_id=track, subject_id="S1", score=0.8, shots=2, t_wall=t_wall,
                          t_mono=t_mono, frame_index=track, watchlist_version="v", probe_jpeg=PROBE)


def services(app: AppConfig, db: sqlite_utils.Database, calibration: ScoreCalibration, clock: FakeClock,
             indicators: NullIndicators | None = None) -> tuple[Hub, HubServices, LinkStub]:
    hub = Hub(db, calibration, app.pipeline, clock=clock)
    link = LinkStub()
    return hub, HubServices(app, hub, clock=clock, link=link, indicators=indicators), link


def test_a_resent_decision_is_answered_not_recorded_twice(app: AppConfig, db: sqlite_utils.Database,
                                                          calibration: ScoreCalibration, ready: int) -> None:
    """After a restart the viewer resends a decision whose ack it lost: one audit row, no refusal."""
    clock = FakeClock()
    hub, svc, _ = services(app, db, calibration, clock)
    hub.require_ready()
    hub.handle(candidate(clock.monotonic(), clock.time()))
    alert_id = db.execute("SELECT id FROM alerts").fetchone()[0]
    d = Decision(decision_id="0b8e6c1e-5d55-4c55-9d3c-5a3cf1e6a001", alert_id=alert_id, outcome="false_alert",
                 note="", t_wall=clock.time())
    svc.recorders.record_decision(d)
    svc.recorders.record_decision(d)
    rows = db.execute("SELECT details FROM audit WHERE action = 'decision'").fetchall()
    assert [json.loads(r[0])["decision_id"] for r in rows] == [d.decision_id]
    with pytest.raises(PolicyError, match="already decided"):
        svc.recorders.record_decision(replace(d, decision_id="0b8e6c1e-5d55-4c55-9d3c-5a3cf1e6a002",
                                    outcome="confirmed_stopped"))
    svc.close()


def test_handheld_answers_reach_the_alert_row_and_audit_once(app: AppConfig, db: sqlite_utils.Database,
                                                           calibration: ScoreCalibration, ready: int) -> None:
    """The hub's link hands handheld events to the store: an officer's answer on a confirmed alert lands in
    the alert row and the audit log once, however often the laptop resends it."""
    clock = FakeClock()
    hub, svc, _ = services(app, db, calibration, clock)
    hub.require_ready()
    hub.handle(candidate(clock.monotonic(), clock.time()))
    alert_id = db.execute("SELECT id FROM alerts").fetchone()[0]
    svc.recorders.record_decision(Decision(decision_id="0b8e6c1e-5d55-4c55-9d3c-5a3cf1e6a011", alert_id=alert_id,
                                 outcome="confirmed_stopped", note="", t_wall=clock.time()))
    event = HandheldEvent(event_id="0b8e6c1e-5d55-4c55-9d3c-5a3cf1e6a012", kind="arrested",
                          device_id="0b8e6c1e-5d55-4c55-9d3c-5a3cf1e6a013", callsign="Alpha 1", alert_id=alert_id,
                          t_wall=clock.time())
    svc.recorders.record_handheld_event(event)
    svc.recorders.record_handheld_event(event)
    assert db.execute("SELECT field_outcome, field_callsign FROM alerts").fetchone() == ("arrested", "Alpha 1")
    assert db.execute("SELECT COUNT(*) FROM audit WHERE action = 'handheld_arrested'").fetchone()[0] == 1
    svc.close()


def test_stop_button_stops_capture_blacks_preview_and_is_audited(app: AppConfig, db: sqlite_utils.Database,
                                                                 calibration: ScoreCalibration) -> None:
    from gpiozero.pins.mock import MockFactory

    factory = MockFactory()
    gpio = GpioConfig(pin_factory="mock", stop_button_pin=27, sign_relay_pin=22, bounce_seconds=0.0)
    app = replace(app, gpio=gpio)
    clock = FakeClock()
    hub = Hub(db, calibration, app.pipeline, clock=clock)
    link = LinkStub()
    svc = HubServices(app, hub, clock=clock, link=link, indicators=None)
    svc.lights.indicators.close()
    svc.lights.indicators = GpioIndicators(gpio, pin_factory=factory, when_stop=svc.lights.stop_pressed.set,
                                    when_resume=svc.lights.resume_pressed.set)
    button = factory.pin(27)
    button.drive_low()
    button.drive_high()
    pressed = time.monotonic()
    while not svc.lights.is_paused() and time.monotonic() - pressed < 1.0:
        svc.tick()  # the hub loop ticks every 0.25 s at most
        time.sleep(0.02)
    assert svc.lights.is_paused(), "capture did not stop within 1 s of the press"
    assert Path(app.appliance.stop_flag).exists()
    assert link.previews and all(p.camera == "cam0" for p in link.previews)  # the black frame
    n = len(link.previews)
    svc.preview(PreviewFrame("cam0", clock.time(), 32, 32, PROBE))
    assert len(link.previews) == n, "a street preview left while capture was stopped"
    assert not svc.state().scanning and factory.pin(22).state is False  # sign relay off
    button.drive_low()
    button.drive_high()
    svc.tick()
    assert not svc.lights.is_paused()
    actions = [r[0] for r in db.execute("SELECT action FROM audit ORDER BY seq")]
    assert actions[-2:] == ["capture_stopped", "capture_resumed"]
    svc.close()


def test_disk_nearly_full_alerts_still_go_out_but_keep_no_probe(app: AppConfig, db: sqlite_utils.Database,
                                                                calibration: ScoreCalibration,
                                                                ready: int) -> None:
    app = replace(app, appliance=replace(app.appliance, min_free_mb=1e6))  # any disk is "nearly full"
    clock = FakeClock()
    hub, svc, link = services(app, db, calibration, clock)
    hub.require_ready()
    svc.tick()
    assert svc.reporter.is_disk_low
    assert link.health is not None and link.health.disk_low is True
    assert "DISK" not in link.health.accelerator  # the accelerator says only where inference runs
    hub.handle(candidate(clock.monotonic(), clock.time()))
    alert_id, probe = db.execute("SELECT id, probe_jpeg FROM alerts").fetchone()
    assert probe is None
    sent = outbox.load(db, alert_id)
    assert sent is not None and sent.probe_jpeg == PROBE
    assert link.notified == 1
    app_ok = replace(app, appliance=replace(app.appliance, min_free_mb=0.0))
    svc.reporter.cfg = app_ok  # room again: the next health says so and probes are kept
    clock.advance(app.link.health_interval + 1)
    svc.tick()
    assert not svc.reporter.is_disk_low and link.health.disk_low is False and hub.keep_probe()
    svc.close()


def test_a_silent_camera_shows_as_a_fault(app: AppConfig, db: sqlite_utils.Database,
                                          calibration: ScoreCalibration, ready: int) -> None:
    """Camera gone: its reports stop; the LED shows the fault, scanning (and the sign) is off, no crash."""
    clock = FakeClock()
    hub, svc, _ = services(app, db, calibration, clock, indicators=NullIndicators())
    hub.require_ready()
    svc.lights.when_link(True)  # the viewer answers
    svc.observe(StatsDelta("cam0", clock.time(), {"frames": 10}, {}, True))
    assert pattern_for(svc.state()) is Pattern.SCANNING
    clock.advance(app.appliance.camera_silent_s + 1)
    svc.tick()
    assert svc.state().fault and pattern_for(svc.state()) is Pattern.FAULT
    svc.observe(StatsDelta("cam0", clock.time(), {"frames": 10}, {}, True))
    assert pattern_for(svc.state()) is Pattern.SCANNING
    svc.close()


def test_wall_clock_step_neither_reorders_alerts_nor_breaks_the_cooldown(
        app: AppConfig, db: sqlite_utils.Database, calibration: ScoreCalibration, ready: int) -> None:
    """An NTP step back by an hour must not let a subject alert again inside its cooldown, and alerts keep
    their order (seq) whatever their wall times say."""
    clock = FakeClock()
    hub = Hub(db, calibration, app.pipeline, clock=clock)
    hub.require_ready()
    wall, mono = clock.time(), clock.monotonic()
    hub.handle(candidate(mono, wall, track=1))
    hub.handle(candidate(mono + 10, wall - 3600, track=2))   # clock stepped back: still in cooldown
    hub.handle(candidate(mono + app.pipeline.cooldown_s + 1, wall - 3600 + 51, track=3))
    rows = db.execute("SELECT seq, track_id, t_mono FROM alerts ORDER BY seq").fetchall()
    assert [(s, t) for s, t, _ in rows] == [(1, 1), (2, 3)]
    assert rows[0][2] < rows[1][2]
    assert hub.totals.alerts_cooled == 1


def test_locked_database_refuses_the_decision_then_records_it(app: AppConfig, db: sqlite_utils.Database,
                                                              calibration: ScoreCalibration, ready: int,
                                                              cfg: AppConfig) -> None:
    """A writer holding the lock: the decision is refused with a clear error (the viewer resends it), nothing
    half-written; once the lock is gone the resent decision is recorded."""
    app = replace(app, storage=replace(app.storage, busy_timeout_ms=100))
    clock = FakeClock()
    hub, svc, _ = services(app, db, calibration, clock)
    hub.require_ready()
    hub.handle(candidate(clock.monotonic(), clock.time()))
    alert_id = db.execute("SELECT id FROM alerts").fetchone()[0]
    d = Decision(decision_id="0b8e6c1e-5d55-4c55-9d3c-5a3cf1e6a003", alert_id=alert_id,
                 outcome="confirmed_stopped", note="", t_wall=clock.time())
    holder = sqlite3.connect(Path(app.paths.state_dir) / app.storage.db_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(StorageError, match="locked"):
        svc.recorders.record_decision(d)
    holder.rollback()
    holder.close()
    assert db.execute("SELECT state FROM alerts").fetchone()[0] == "pending"
    svc.recorders.record_decision(d)
    assert db.execute("SELECT state, decision FROM alerts").fetchone() == ("decided", "confirmed_stopped")
    svc.close()


def test_corrupt_database_is_a_clear_error(tmp_path: Path) -> None:
    from firmware.store.db import open_db

    bad = tmp_path / "lfr.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LfrError, match="not a SQLite database or is corrupt"):
        open_db(bad)


def test_no_edge_tpu_falls_back_to_the_cpu_and_health_says_so(app: AppConfig, db: sqlite_utils.Database,
                                                               calibration: ScoreCalibration) -> None:
    """This machine has no Edge TPU (no libedgetpu, no *_edgetpu.tflite): `auto` runs on the CPU and the
    health message names the fallback."""
    rec = Recognizer.from_config(replace(app, models=replace(app.models, accelerator="auto")))
    clock = FakeClock()
    hub = Hub(db, calibration, app.pipeline, clock=clock)
    link = LinkStub()
    svc = HubServices(app, hub, clock=clock, recognizers=[rec], link=link)
    assert "cpu" in svc.reporter.accelerator().lower() and "Edge TPU unavailable" in svc.reporter.accelerator()
    svc.tick()
    assert link.health is not None and "Edge TPU unavailable" in link.health.accelerator
    svc.close()
