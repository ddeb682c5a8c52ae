"""The outbox on a real sqlite file: written only inside the alert's transaction, read in seq order."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from link_fixtures import create_outbox, make_alert

from firmware.errors import StorageError
from firmware.store import outbox


def test_enqueue_outside_a_transaction_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    """Regression: sqlite-utils autocommits each statement, so an alert and its outbox row written without
    an explicit transaction were separate commits, and a SIGKILL between them lost the alert."""
    db = create_outbox(tmp_path / "a.db")
    with pytest.raises(StorageError, match="transaction"):
        outbox.enqueue(db, make_alert(1), 0.0)
    assert outbox.count(db) == 0


def test_a_rolled_back_alert_leaves_no_outbox_row(tmp_path: Path) -> None:
    db = create_outbox(tmp_path / "a.db")
    with pytest.raises(RuntimeError), db.atomic():
        outbox.enqueue(db, make_alert(1), 0.0)
        raise RuntimeError("the alert's own insert failed")
    assert outbox.count(db) == 0


def test_pending_in_seq_order_attempts_counted_acks_delete_once(tmp_path: Path) -> None:
    db = create_outbox(tmp_path / "a.db")
    alerts = [make_alert(s) for s in (3, 1, 2)]
    with db.atomic():
        for a in alerts:
            outbox.enqueue(db, a, 100.0)
    assert [seq for _, seq in outbox.pending(db, 10)] == [1, 2, 3]
    assert outbox.pending(db, 2) == [(alerts[1].alert_id, 1), (alerts[2].alert_id, 2)]
    assert outbox.load(db, alerts[0].alert_id) == alerts[0]
    outbox.mark_sent(db, [alerts[1].alert_id], 200.0)
    outbox.mark_sent(db, [alerts[1].alert_id], 201.0)
    row = db.execute("SELECT attempts, last_sent FROM outbox WHERE alert_id = ?",
                     [alerts[1].alert_id]).fetchone()
    assert row == (2, 201.0)
    assert outbox.acknowledge(db, [alerts[1].alert_id]) == 1
    assert outbox.acknowledge(db, [alerts[1].alert_id]) == 0
    assert outbox.load(db, alerts[1].alert_id) is None
    assert outbox.count(db) == 2


def test_a_corrupt_row_is_logged_and_not_sent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = create_outbox(tmp_path / "a.db")
    alert = make_alert(1)
    with db.atomic():
        outbox.enqueue(db, alert, 0.0)
    db.execute("UPDATE outbox SET header = '{\"type\": \"alert\"' WHERE alert_id = ?", [alert.alert_id])
    with caplog.at_level(logging.ERROR, logger="firmware.store.outbox"):
        assert outbox.load(db, alert.alert_id) is None
    assert alert.alert_id in caplog.text and "stays for inspection" in caplog.text
