"""The laptop's store: alerts kept once, decisions' states, filters, and the 30-day image purge."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from link_fixtures import make_alert

from firmware.errors import PolicyError, StorageError
from firmware.hardware.clock import FakeClock
from firmware.viewer.store import DAY_SECONDS, AlertFilter, ViewerStore


@pytest.fixture
def store(tmp_path: Path) -> ViewerStore:
    with ViewerStore(tmp_path / "viewer" / "viewer.sqlite3") as store:
        yield store


def test_alerts_are_kept_once_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    alerts = [make_alert(s) for s in (1, 2, 3)]
    with ViewerStore(path) as store:
        assert [store.keep_alert(a, received=time.time(), deployment="1: Test St") for a in alerts] == [True] * 3
        assert store.keep_alert(alerts[1], received=time.time(), deployment=None) is False
    with ViewerStore(path) as store:
        assert store.last_seq() == 3
        assert sorted(store.seen_ids()) == sorted(a.alert_id for a in alerts)
        assert [a["seq"] for a in store.alerts()] == [3, 2, 1]
        assert store.image(alerts[0].alert_id, "probe") == alerts[0].probe_jpeg
        assert store.counts("1: Test St")["alerts"] == 3


def test_a_decision_goes_pending_sending_decided_and_a_refusal_reopens_it(store: ViewerStore) -> None:
    a, b = make_alert(1), make_alert(2)
    for alert in (a, b):
        store.keep_alert(alert, received=time.time(), deployment=None)
    d1, d2 = str(uuid.uuid4()), str(uuid.uuid4())
    store.decision_sent(a.alert_id, d1, "false_alert", "lighting")
    with pytest.raises(PolicyError, match="already sending"):
        store.decision_sent(a.alert_id, str(uuid.uuid4()), "confirmed_stopped", "")
    assert store.decision_done(a.alert_id, str(uuid.uuid4()), True, "", 5.0) is False  # not this decision
    assert store.decision_done(a.alert_id, d1, True, "", 5.0) is True
    store.decision_sent(b.alert_id, d2, "confirmed_stopped", "")
    store.decision_done(b.alert_id, d2, False, "alert was already decided as false_alert", 6.0)
    got = {x["id"]: x for x in store.alerts()}
    assert (got[a.alert_id]["state"], got[a.alert_id]["outcome"], got[a.alert_id]["note"]) == \
        ("decided", "false_alert", "lighting")
    assert (got[b.alert_id]["state"], got[b.alert_id]["outcome"]) == ("pending", None)
    assert "already decided" in got[b.alert_id]["refusal"]
    assert store.path.parent.stat().st_mode & 0o077 == 0  # the laptop's folder is the user's only
    assert store.counts() == {"alerts": 2, "pending": 1, "confirmed_stopped": 0, "confirmed_not_stopped": 0,
                              "false_alert": 1}
    with pytest.raises(StorageError, match="no alert"):
        store.decision_sent(str(uuid.uuid4()), d1, "false_alert", "")


def test_unconfirmed_decisions_are_kept_with_their_ids_across_a_reopen(tmp_path: Path) -> None:
    """A decision on its way when the laptop stops is kept as sent (outcome, note, id) to be sent again."""
    path = tmp_path / "viewer.sqlite3"
    with ViewerStore(path) as store:
        a, b = make_alert(1), make_alert(2)
        for alert in (a, b):
            store.keep_alert(alert, received=time.time(), deployment=None)
        d1 = str(uuid.uuid4())
        store.decision_sent(a.alert_id, d1, "confirmed_not_stopped", "walked off")
    with ViewerStore(path) as store:
        assert store.unconfirmed() == [(a.alert_id, d1, "confirmed_not_stopped", "walked off")]
        assert store.decision_done(a.alert_id, d1, True, "", at=time.time())
        assert store.unconfirmed() == []


def test_history_filters_by_outcome_camera_and_category(store: ViewerStore) -> None:
    import dataclasses
    alerts = [dataclasses.replace(make_alert(s), camera=f"cam{s % 2}", category=("wanted", "missing")[s % 3 == 0])
              for s in range(1, 7)]
    for a in alerts:
        store.keep_alert(a, received=time.time(), deployment=None)
    decided = str(uuid.uuid4())
    store.decision_sent(alerts[0].alert_id, decided, "confirmed_stopped", "")
    store.decision_done(alerts[0].alert_id, decided, True, "", 1.0)
    seqs = lambda **kw: [a["seq"] for a in store.alerts(AlertFilter(**kw))]  # noqa: E731
    assert seqs(camera="cam0") == [6, 4, 2]
    assert seqs(category="missing") == [6, 3]
    assert seqs(outcome="confirmed_stopped") == [1]
    assert seqs(outcome="pending", camera="cam1") == [5, 3]
    assert store.choices() == {"camera": ["cam0", "cam1"], "category": ["missing", "wanted"]}
    with pytest.raises(PolicyError, match="unknown outcome"):
        AlertFilter(outcome="maybe")


def test_purge_drops_images_after_the_retention_period_and_keeps_the_facts(store: ViewerStore) -> None:
    import dataclasses
    clock = FakeClock()
    old = dataclasses.replace(make_alert(1), t_wall=clock.time() - 31 * DAY_SECONDS)
    edge = dataclasses.replace(make_alert(2), t_wall=clock.time() - 29 * DAY_SECONDS)
    for a in (old, edge):
        store.keep_alert(a, received=clock.time(), deployment=None)
    result = store.purge(clock=clock)
    assert result.alerts_purged == 1
    assert store.image(old.alert_id, "probe") is None and store.image(old.alert_id, "reference") is None
    assert store.image(edge.alert_id, "probe") == edge.probe_jpeg
    facts = store.alert(old.alert_id)
    assert facts is not None and facts["subject_id"] == old.subject_id and not facts["has_probe"]
    raw = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
    assert old.probe_jpeg not in raw  # secure_delete + WAL truncation: the bytes are gone from the files
    clock.advance(2 * DAY_SECONDS)
    assert store.purge(clock=clock).alerts_purged == 1
    assert store.purge(clock=clock).alerts_purged == 0
    with pytest.raises(PolicyError, match="outside policy"):
        store.purge(clock=clock, retention_days=31)


def test_an_unusable_file_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="viewer database"):
        ViewerStore(path)
