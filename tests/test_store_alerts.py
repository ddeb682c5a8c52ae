"""Alerts: alert, outbox message, audit row and stats are written together or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlite_utils
from link_fixtures import tiny_jpeg

from firmware.errors import PolicyError, StorageError
from firmware.hardware.clock import FakeClock
from firmware.store import alerts, audit, deployments, outbox
from firmware.store.alerts import NewAlert
from firmware.store.db import open_db
from firmware.store.stats import StatsCounters, read_stats


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path, clock: FakeClock) -> sqlite_utils.Database:
    db = open_db(tmp_path / "lfr.sqlite3")
    deployments.start(db, authority="AUTH-1", officer="PC Test", location="Test St", threshold=0.6,
                      clock=clock, actor="test")
    yield db
    db.close()


def new_alert(clock: FakeClock, score: float = 0.8, track_id: int = 1, deployment_id: int = 1) -> NewAlert:
    return NewAlert(deployment_id=deployment_id, t_wall=clock.time(), t_mono=clock.monotonic(), camera="cam0",
                    track_id=track_id, subject_id="S-7", subject_name="Alerted Person", score=score,
                    category="wanted", reason="warrant", probe_jpeg=tiny_jpeg(10), reference_jpeg=tiny_jpeg(200))


def counts(db: sqlite_utils.Database) -> tuple[int, int, int]:
    return tuple(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # type: ignore[return-value]
                 for t in ("alerts", "outbox", "audit"))


def test_record_alert_writes_alert_outbox_audit_stats(db: sqlite_utils.Database, clock: FakeClock) -> None:
    alert = new_alert(clock)
    sent = alerts.record_alert(db, alert, actor="pipeline:cam0")
    assert sent.seq == 1 and counts(db) == (1, 1, 2)
    row = db.execute("SELECT state, probe_jpeg, score FROM alerts WHERE id = ?", [alert.id]).fetchone()
    assert row == ("pending", alert.probe_jpeg, 0.8)
    assert outbox.pending(db, 10) == [(alert.id, 1)]
    message = outbox.load(db, alert.id)
    assert message == sent  # the alert as stored is the alert as sent
    assert (message.alert_id, message.seq, message.subject_name) == (alert.id, 1, "Alerted Person")
    assert message.probe_jpeg == alert.probe_jpeg and message.reference_jpeg == alert.reference_jpeg
    assert read_stats(db, 1)["alerts"] == 1 and read_stats(db, 1)["pending"] == 1
    assert audit.verify(db).ok


def test_failure_mid_record_alert_leaves_nothing(db: sqlite_utils.Database, clock: FakeClock) -> None:
    """The audit insert fails after the alert and outbox rows were written: all of it must roll back."""
    db.execute("CREATE TRIGGER fail_audit BEFORE INSERT ON audit "
               "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    before = counts(db)
    with pytest.raises(StorageError, match="disk says no"):
        alerts.record_alert(db, new_alert(clock), actor="pipeline:cam0")
    assert counts(db) == before
    assert read_stats(db, 1)["alerts"] == 0


def test_duplicate_alert_id_leaves_nothing_half_written(db: sqlite_utils.Database, clock: FakeClock) -> None:
    alert = new_alert(clock)
    alerts.record_alert(db, alert, actor="pipeline:cam0")
    db.execute("DELETE FROM alerts WHERE id = ?", [alert.id])  # outbox row stays: the re-insert clashes
    with pytest.raises(StorageError, match="cannot add alert"):
        alerts.record_alert(db, alert, actor="pipeline:cam0")
    assert counts(db) == (0, 1, 2)


def test_alert_outside_the_open_deployment_is_refused(db: sqlite_utils.Database, clock: FakeClock) -> None:
    deployments.stop(db, clock=clock, actor="test")
    with pytest.raises(PolicyError, match="not the open one"):
        alerts.record_alert(db, new_alert(clock), actor="pipeline:cam0")
    assert counts(db)[0] == 0


def test_outbox_keeps_capture_order_until_acknowledged(db: sqlite_utils.Database, clock: FakeClock) -> None:
    ids = []
    for track in range(3):
        a = new_alert(clock, track_id=track)
        alerts.record_alert(db, a, actor="pipeline:cam0")
        ids.append(a.id)
        clock.advance(1.0)
    assert [a for a, _ in outbox.pending(db, 10)] == ids
    assert outbox.acknowledge(db, [ids[1]], clock.time()) == 1
    assert outbox.acknowledge(db, [ids[1]], clock.time()) == 0
    assert [a for a, _ in outbox.pending(db, 10)] == [ids[0], ids[2]]
    assert db.execute("SELECT COUNT(*) FROM audit WHERE action = 'alert_delivered'").fetchone()[0] == 1


def test_decisions_update_alert_stats_and_audit(db: sqlite_utils.Database, clock: FakeClock) -> None:
    a, b = new_alert(clock, track_id=1), new_alert(clock, track_id=2)
    alerts.record_alert(db, a, actor="p")
    alerts.record_alert(db, b, actor="p")
    alerts.record_decision(db, a.id, "confirmed_stopped", clock=clock, actor="operator:laptop", note="verified")
    alerts.record_decision(db, b.id, "false_alert", clock=clock, actor="operator:laptop")
    stats = read_stats(db, 1)
    assert (stats["alerts"], stats["confirmed"], stats["false_alerts"], stats["pending"]) == (2, 1, 1, 0)
    assert db.execute("SELECT state, decision FROM alerts WHERE id = ?", [a.id]).fetchone() == \
        ("decided", "confirmed_stopped")
    with pytest.raises(PolicyError, match="already decided as confirmed"):
        alerts.record_decision(db, a.id, "confirmed_not_stopped", clock=clock, actor="operator:laptop")
    with pytest.raises(StorageError, match="unknown decision"):
        alerts.record_decision(db, b.id, "maybe", clock=clock, actor="operator:laptop")
    assert db.execute("SELECT COUNT(*) FROM audit WHERE action = 'decision'").fetchone()[0] == 2


def test_stats_counters_flush_deltas(db: sqlite_utils.Database, clock: FakeClock) -> None:
    one, two = StatsCounters(), StatsCounters()  # two camera processes sharing a deployment
    one.add("frames", 100)
    one.add("faces_seen", 3)
    two.add("frames", 50)
    assert one.flush(db, 1, clock=clock)["frames"] == 100
    two.flush(db, 1, clock=clock)
    one.flush(db, 1, clock=clock)  # nothing new: adds zero
    assert read_stats(db, 1)["frames"] == 150 and read_stats(db, 1)["faces_seen"] == 3
    with pytest.raises(KeyError, match="unknown counter"):
        one.add("faces_kept")


def test_failed_flush_keeps_the_counts(db: sqlite_utils.Database, clock: FakeClock) -> None:
    counters = StatsCounters()
    counters.add("frames", 7)
    with pytest.raises(StorageError, match="no stats row for deployment 99"):
        counters.flush(db, 99, clock=clock)
    assert counters.flush(db, 1, clock=clock)["frames"] == 7
