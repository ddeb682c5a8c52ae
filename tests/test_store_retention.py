"""Retention: images past the period are purged from alerts and outbox, facts stay, the purge is audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware.config import parse_config
from firmware.errors import ConfigError, PolicyError
from firmware.hardware.clock import FakeClock
from firmware.store import alerts, audit, deployments, retention
from firmware.store.alerts import NewAlert
from firmware.store.db import open_db

DAY = 86400.0
PROBE = b"\xff\xd8\xff\xe0probe-crop-of-an-alerted-face\xff\xd9"
REFERENCE = b"\xff\xd8\xff\xe0reference-photo-of-the-subject\xff\xd9"


def _alert(dep: int, clock: FakeClock, track: int) -> NewAlert:
    return NewAlert(deployment_id=dep, t_wall=clock.time(), t_mono=clock.monotonic(), camera="cam0",
                    track_id=track, subject_id=f"S-{track}", subject_name="Alerted Person", score=0.75,
                    category="wanted", reason="warrant", probe_jpeg=PROBE + bytes([track]),
                    reference_jpeg=REFERENCE + bytes([track]))


def test_images_purged_after_31_days_facts_kept(tmp_path: Path) -> None:
    path = tmp_path / "lfr.sqlite3"
    clock = FakeClock()
    db = open_db(path)
    dep = deployments.start(db, authority="A", officer="O", location="L", threshold=0.6, clock=clock,
                            actor="test")
    old = _alert(dep.id, clock, 1)
    alerts.record_alert(db, old, actor="p")
    alerts.record_decision(db, old.id, "confirmed_stopped", clock=clock, actor="operator")
    clock.advance(5 * DAY)
    young = _alert(dep.id, clock, 2)
    alerts.record_alert(db, young, actor="p")

    clock.advance(26 * DAY)  # old alert is 31 days old, young one 26
    result = retention.purge(db, clock=clock, actor="timer")
    assert (result.alerts_purged, result.outbox_purged, result.wal_truncated) == (1, 1, True)

    row = db.execute("SELECT probe_jpeg, reference_jpeg, images_purged_at, score, decision, subject_id "
                     "FROM alerts WHERE id = ?", [old.id]).fetchone()
    assert row == (None, None, clock.time(), 0.75, "confirmed_stopped", "S-1")
    assert db.execute("SELECT probe_jpeg, reference_jpeg FROM outbox WHERE alert_id = ?",
                      [old.id]).fetchone() == (None, None)
    kept = db.execute("SELECT probe_jpeg FROM alerts WHERE id = ?", [young.id]).fetchone()[0]
    assert kept == young.probe_jpeg
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("lfr.sqlite3*"))
    assert old.probe_jpeg not in raw and old.reference_jpeg not in raw
    assert young.probe_jpeg in raw  # the search does find images that should still be there

    details = json.loads(db.execute("SELECT details FROM audit WHERE action = 'purge'").fetchone()[0])
    assert details["alerts"] == 1 and details["alert_ids"] == [old.id] and details["retention_days"] == 30
    assert audit.verify(db).ok

    again = retention.purge(db, clock=clock, actor="timer")
    assert again.alerts_purged == 0 and again.outbox_purged == 0
    db.close()


def test_shorter_period_purges_sooner(tmp_path: Path) -> None:
    clock = FakeClock()
    db = open_db(tmp_path / "lfr.sqlite3")
    dep = deployments.start(db, authority="A", officer="O", location="L", threshold=0.6, clock=clock,
                            actor="test")
    alerts.record_alert(db, _alert(dep.id, clock, 1), actor="p")
    clock.advance(2 * DAY)
    assert retention.purge(db, clock=clock, actor="t", retention_days=30).alerts_purged == 0
    assert retention.purge(db, clock=clock, actor="t", retention_days=1).alerts_purged == 1


@pytest.mark.parametrize("days", [0, 31, 365])
def test_period_outside_policy_is_refused(tmp_path: Path, days: int) -> None:
    db = open_db(tmp_path / "lfr.sqlite3")
    with pytest.raises(PolicyError, match="outside policy"):
        retention.purge(db, clock=FakeClock(), actor="t", retention_days=days)


def test_config_may_not_lengthen_retention() -> None:
    with pytest.raises(ConfigError, match="storage.retention_days: 45 is above the maximum 30"):
        parse_config({"storage": {"retention_days": 45}})
    assert parse_config({"storage": {"retention_days": 7}}).storage.retention_days == 7
