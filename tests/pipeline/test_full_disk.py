"""Issue 13, finding 4: with the state directory on a 2 MiB tmpfs, 5 of 6 alerts were logged "not recorded"
and never reached the operator, scanning went on and health said only "no probe crops kept". Now an alert the
disk cannot take is sent from memory marked not persisted, health and the fault LED say alerts are not being
recorded, and capture is held while neither the disk nor the link can take an alert.

The full disk is SQLite's own: `PRAGMA max_page_count` pinned to the file's size makes every write that needs
a new page fail with SQLITE_FULL ("database or disk is full"), exactly as on a full filesystem."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from firmware.config import AppConfig
from firmware.hardware.clock import FakeClock
from firmware.hardware.indicators import NullIndicators, Pattern, pattern_for
from firmware.link.messages import Alert
from firmware.match.score import ScoreCalibration
from firmware.pipeline.hub import Hub
from firmware.pipeline.messages import StatsDelta
from firmware.pipeline.services import HubServices

from .pipeline_helpers import LinkStub
from .test_services_faults import candidate


class MemoryLinkStub(LinkStub):
    """The link's memory side for alerts the van cannot write; `room` says whether it takes more."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[Alert] = []
        self.room = True
        self.up = True

    def keep_unrecorded(self, alert: Alert) -> bool:
        if not self.room:
            return False
        self.kept.append(alert)
        return True

    def can_take_alerts(self) -> bool:
        return self.room and self.up


def fill_disk(db: sqlite_utils.Database) -> None:
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


def test_no_alert_is_lost_on_a_full_disk(app: AppConfig, db: sqlite_utils.Database,
                                         calibration: ScoreCalibration, ready: int) -> None:
    clock = FakeClock()
    hub = Hub(db, calibration, app.pipeline, clock=clock)
    link = MemoryLinkStub()
    svc = HubServices(app, hub, clock=clock, link=link, indicators=NullIndicators())
    hub.require_ready()
    hub.handle(candidate(clock.monotonic(), clock.time(), track=1))  # recorded: the disk has room
    stored_seq = db.execute("SELECT MAX(seq) FROM alerts").fetchone()[0]
    fill_disk(db)
    for track in range(2, 8):  # six alerts on a full disk
        clock.advance(app.pipeline.cooldown_s + 1)
        hub.handle(candidate(clock.monotonic(), clock.time(), track=track))
    assert hub.totals.alerts_lost == 0 and hub.totals.alerts_unrecorded == 6
    assert [a.persisted for a in link.kept] == [False] * 6
    seqs = [a.seq for a in link.kept]
    assert seqs == sorted(set(seqs)) and seqs[0] > stored_seq
    assert db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0] == 1  # nothing half-written

    clock.advance(app.link.health_interval + 1)
    svc.observe(StatsDelta("cam0", clock.time(), {"frames": 10}, {}, True))  # the camera is fine
    svc.tick()
    assert not hub.is_recording
    assert link.health is not None and link.health.alerts_not_recorded is True
    assert pattern_for(svc.state()) == Pattern.FAULT
    assert not svc.lights.is_paused()  # the link still takes alerts: scanning goes on

    link.up = False  # and now the laptop is gone too: no alert could reach anyone
    svc.tick()
    assert svc.lights.is_paused() and Path(app.appliance.stop_flag).exists()
    link.up = True
    svc.tick()
    assert not svc.lights.is_paused()

    db.execute("PRAGMA max_page_count = 1073741823")  # room again: the next alert is written
    clock.advance(app.pipeline.cooldown_s + 1)
    hub.handle(candidate(clock.monotonic(), clock.time(), track=9))
    assert hub.is_recording and len(link.kept) == 6
    (seq,) = db.execute("SELECT MAX(seq) FROM alerts").fetchone()
    assert seq > max(seqs)  # no seq handed out from memory is given again
    clock.advance(app.link.health_interval + 1)
    svc.observe(StatsDelta("cam0", clock.time(), {"frames": 10}, {}, True))
    svc.tick()
    assert link.health.alerts_not_recorded is False and pattern_for(svc.state()) != Pattern.FAULT
    svc.close()


def test_an_alert_neither_disk_nor_link_can_take_is_counted_lost(app: AppConfig, db: sqlite_utils.Database,
                                                                 calibration: ScoreCalibration,
                                                                 ready: int) -> None:
    clock = FakeClock()
    hub = Hub(db, calibration, app.pipeline, clock=clock)
    link = MemoryLinkStub()
    svc = HubServices(app, hub, clock=clock, link=link, indicators=NullIndicators())
    hub.require_ready()
    fill_disk(db)
    link.room = False
    hub.handle(candidate(clock.monotonic(), clock.time()))
    assert hub.totals.alerts_lost == 1 and not hub.is_recording
    svc.tick()
    assert svc.lights.is_paused()  # no new faces are taken while no alert could go anywhere
    svc.close()
