"""The laptop's store: alerts kept once, decisions' states, filters, and the 30-day image purge."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path

import pytest
import sqlite_utils
from link_fixtures import make_alert

from firmware.errors import PolicyError, StorageError
from firmware.hardware.clock import FakeClock
from firmware.store.db import schema_version
from firmware.viewer.handheld.store import MIGRATIONS as handheld_migrations
from firmware.viewer.handheld.store import HandheldStore
from firmware.viewer.store import _SCHEMA, DAY_SECONDS, AlertFilter, ViewerStore
from firmware.viewer.store import MIGRATIONS as viewer_migrations


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
    assert store.counts() == {"alerts": 2, "pending": 1, "archived": 0, "confirmed_stopped": 0,
                              "confirmed_not_stopped": 0, "false_alert": 1}
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
    assert store.choices() == {"camera": ["cam0", "cam1"], "category": ["missing", "wanted"], "deployment": []}
    with pytest.raises(PolicyError, match="unknown outcome"):
        AlertFilter(outcome="maybe")


def test_history_filters_by_time_and_score_and_pages(store: ViewerStore) -> None:
    """Issue 14: the history had no time or score filter and no paging (only the newest 500)."""
    import dataclasses
    t0 = 1_800_000_000.0
    alerts = [dataclasses.replace(make_alert(s), t_wall=t0 + 60 * s, score=0.5 + s / 100) for s in range(1, 13)]
    for a in alerts:
        store.keep_alert(a, received=t0, deployment="1: Test St")
    seqs = lambda where, **kw: [a["seq"] for a in store.alerts(where, **kw)]  # noqa: E731
    assert seqs(AlertFilter(since=t0 + 60 * 3, until=t0 + 60 * 6)) == [5, 4, 3]
    assert seqs(AlertFilter(min_score=0.6)) == [12, 11, 10]
    assert seqs(AlertFilter(deployment="1: Test St"), limit=5) == [12, 11, 10, 9, 8]
    assert seqs(AlertFilter(), limit=5, offset=10) == [2, 1]
    assert store.count(AlertFilter(min_score=0.555)) == 7
    with pytest.raises(PolicyError, match="outside 0..1"):
        AlertFilter(min_score=1.5)
    with pytest.raises(PolicyError, match="not after"):
        AlertFilter(since=t0, until=t0)
    with pytest.raises(PolicyError, match="history page"):
        store.alerts(AlertFilter(), limit=0)


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


def test_closing_a_deployment_archives_its_queue_and_forgets_names_like_the_van(store: ViewerStore) -> None:
    """Issue 14: after `lfr deployment stop` the laptop kept names and reference photos of the closed
    deployment indefinitely and its pending alerts could still be decided."""
    import dataclasses
    clock = FakeClock()
    old = [dataclasses.replace(make_alert(s), t_wall=clock.time()) for s in (1, 2, 3)]
    new = dataclasses.replace(make_alert(4), t_wall=clock.time(), subject_name="Subject Of Deployment Two")
    for a in old:
        store.keep_alert(a, received=clock.time(), deployment="1: Test St")
    store.keep_alert(new, received=clock.time(), deployment="2: Other St")
    d = str(uuid.uuid4())
    store.decision_sent(old[0].alert_id, d, "confirmed_stopped", "")
    store.decision_done(old[0].alert_id, d, True, "", clock.time())

    result = store.close_deployments(open_now="2: Other St", at=clock.time())
    assert result is not None and sorted(result.archived) == sorted(a.alert_id for a in old[1:])
    assert store.close_deployments(open_now="2: Other St", at=clock.time()) is None  # once
    for a in old:
        facts = store.alert(a.alert_id)
        assert facts is not None and facts["subject_name"] == "" and not facts["has_reference"]
        assert facts["has_probe"] and facts["score"] == a.score and facts["t_wall"] == a.t_wall
    assert store.alert(old[0].alert_id)["outcome"] == "confirmed_stopped"  # type: ignore[index]
    assert {store.alert(a.alert_id)["state"] for a in old[1:]} == {"archived"}  # type: ignore[index]
    with pytest.raises(PolicyError, match="archived"):
        store.decision_sent(old[1].alert_id, str(uuid.uuid4()), "false_alert", "")
    assert store.counts("1: Test St") == {"alerts": 3, "pending": 0, "archived": 2, "confirmed_stopped": 1,
                                          "confirmed_not_stopped": 0, "false_alert": 0}
    assert store.counts_by_deployment()["2: Other St"]["pending"] == 1
    assert [a["seq"] for a in store.alerts(AlertFilter(outcome="archived"))] == [3, 2]
    raw = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
    for a in old:
        assert a.subject_name.encode() not in raw and a.reference_jpeg not in raw
    assert new.subject_name.encode() in raw and new.reference_jpeg in raw  # the open deployment keeps them

    clock.advance(31 * DAY_SECONDS)  # and at 30 days, as on the van, the images (and the name) go too
    assert store.purge(clock=clock).alerts_purged == 4
    raw = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
    assert new.subject_name.encode() not in raw and new.probe_jpeg not in raw
    assert store.alert(new.alert_id)["score"] == new.score  # type: ignore[index]


def test_an_unusable_file_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="viewer database"):
        ViewerStore(path)


def _pragmas(db: sqlite_utils.Database) -> tuple[str, int, int, int]:
    conn = db.conn
    return (conn.execute("PRAGMA journal_mode").fetchone()[0], conn.execute("PRAGMA synchronous").fetchone()[0],
            conn.execute("PRAGMA foreign_keys").fetchone()[0], conn.execute("PRAGMA secure_delete").fetchone()[0])


def test_both_laptop_files_open_through_the_one_opener_with_its_guarantees(tmp_path: Path) -> None:
    """Regression (issue 16): the handheld file neither checked WAL nor set `synchronous`, and neither laptop
    file had migrations; both now open through `store.db.open_db` with their own migrations."""
    viewer, handheld = ViewerStore(tmp_path / "v.sqlite3"), HandheldStore(tmp_path / "h.sqlite3")
    try:
        for db, migrations in ((viewer._db, viewer_migrations), (handheld.db, handheld_migrations)):
            assert _pragmas(db) == ("wal", 1, 1, 1)  # WAL, synchronous NORMAL, foreign keys, secure delete
            assert schema_version(db) == len(migrations)
    finally:
        viewer.close()
        handheld.close()


def test_a_viewer_file_from_before_migrations_is_brought_up_to_date(tmp_path: Path) -> None:
    """A laptop file made before the viewer had migrations (no schema_version, no `archived` column) keeps its
    alerts and gains what is missing; a file from newer software is refused."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    for statement in _SCHEMA:
        conn.execute(statement)
    alert = make_alert(1)
    conn.execute("INSERT INTO alerts (id, seq, t_wall, received, camera, track_id, subject_id, subject_name, "
                 "category, reason, score) VALUES (?, 1, 1.7e9, 1.7e9, 'cam0', 1, 'S1', 'N', 'c', 'r', 0.8)",
                 [alert.alert_id])
    conn.commit()
    conn.close()
    store = ViewerStore(path)
    assert store.alert(alert.alert_id) is not None and schema_version(store._db) == len(viewer_migrations)
    assert "archived" in {r[1] for r in store._db.execute("PRAGMA table_info(alerts)")}
    store._db.execute("INSERT INTO schema_version (version, applied) VALUES (99, 0)")
    store.close()
    with pytest.raises(StorageError, match="viewer database .* newer than"):
        ViewerStore(path)
