"""The outbox: alerts written before they are sent, deleted when the laptop acknowledges them.

The store's migrations create the table; `store.alerts.record_alert` enqueues in the alert's own transaction,
and the link's worker reads, marks and acknowledges through an `Outbox` opened by `opener` (one connection of
its own, through `open_db`, on its own thread):
`outbox(alert_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, header TEXT NOT NULL, probe_jpeg BLOB,
reference_jpeg BLOB, created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_sent REAL,
context_jpeg BLOB)`.
`header` is the alert's JSON header frame; `created` and `last_sent` are wall-clock seconds (Unix time).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlite_utils import Database

from firmware.errors import MessageError, StorageError
from firmware.link.messages import Alert, decode
from firmware.store import audit
from firmware.store.db import DEFAULT_BUSY_TIMEOUT_MS, open_db, transaction

log = logging.getLogger(__name__)

TABLE = "outbox"


def enqueue(db: Database, alert: Alert, created: float) -> None:
    """Add `alert` to the outbox WITHOUT committing, inside the transaction that creates the alert
    (`with transaction(db): ...`), so an alert exists in both places or in neither; refused outside one."""
    if not db.conn.in_transaction:
        raise StorageError(f"alert {alert.alert_id} must go to the outbox in the transaction that creates it "
                           "(open one with `with transaction(db):` first)")
    header, probe, reference, context = alert.encode()
    try:
        db.execute(f"INSERT INTO {TABLE} (alert_id, seq, header, probe_jpeg, reference_jpeg, context_jpeg, "
                   "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   [alert.alert_id, alert.seq, header.decode("utf-8"), probe, reference, context or None,
                    created])
    except sqlite3.Error as exc:
        raise StorageError(f"cannot add alert {alert.alert_id} (seq {alert.seq}) to the outbox: {exc}"
                           ) from exc


def pending(db: Database, limit: int) -> list[tuple[str, int]]:
    """(alert_id, seq) of the `limit` unacknowledged alerts with the lowest seq, in seq order."""
    rows = db.execute(f"SELECT alert_id, seq FROM {TABLE} ORDER BY seq LIMIT ?", [limit]).fetchall()
    return [(str(alert_id), int(seq)) for alert_id, seq in rows]


def load(db: Database, alert_id: str) -> Alert | None:
    """The outbox alert `alert_id` as a message; None when it is gone (acknowledged) or corrupt (logged)."""
    row = db.execute(f"SELECT header, probe_jpeg, reference_jpeg, context_jpeg FROM {TABLE} WHERE alert_id = ?",
                     [alert_id]).fetchone()
    if row is None:
        return None
    header, probe, reference, context = row
    try:
        alert = decode([str(header).encode("utf-8"), bytes(probe or b""), bytes(reference or b""),
                        bytes(context or b"")])
    except MessageError as exc:
        log.error("outbox row %s cannot be sent and stays for inspection: %s", alert_id, exc)
        return None
    return alert if isinstance(alert, Alert) else None


def mark_sent(db: Database, alert_ids: Iterable[str], when: float) -> None:
    """Count one more send attempt for each alert, at wall-clock time `when`."""
    ids = list(alert_ids)
    if not ids:
        return
    with transaction(db):
        db.conn.executemany(f"UPDATE {TABLE} SET attempts = attempts + 1, last_sent = ? WHERE alert_id = ?",
                            [(when, i) for i in ids])


def acknowledge(db: Database, alert_ids: Iterable[str], when: float | None = None) -> int:
    """Delete acknowledged alerts and audit each delivery, in one transaction; returns how many went.

    A repeated ack deletes and audits nothing. `when` is wall-clock seconds (default now).
    """
    ids = list(dict.fromkeys(alert_ids))
    if not ids:
        return 0
    now = time.time() if when is None else when
    delivered = 0
    with transaction(db):
        for alert_id in ids:
            if db.execute(f"DELETE FROM {TABLE} WHERE alert_id = ?", [alert_id]).rowcount > 0:
                delivered += 1
                audit.append(db, time=now, actor="link", action="alert_delivered", details={"alert_id": alert_id})
    return delivered


def count(db: Database) -> int:
    """Alerts still waiting for the laptop's acknowledgement."""
    return int(db.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0])


class Outbox:
    """The outbox on one connection of its own, as the link's worker uses it (`link.appliance_link.OutboxStore`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def pending(self, limit: int) -> list[tuple[str, int]]:
        """(alert_id, seq) of the `limit` unacknowledged alerts with the lowest seq, in seq order."""
        return pending(self.db, limit)

    def load(self, alert_id: str) -> Alert | None:
        """The alert `alert_id` as a message; None when acknowledged or corrupt."""
        return load(self.db, alert_id)

    def mark_sent(self, alert_ids: Iterable[str], when: float) -> None:
        """Count one more send attempt for each alert, at wall-clock time `when`."""
        mark_sent(self.db, alert_ids, when)

    def acknowledge(self, alert_ids: Iterable[str], when: float) -> int:
        """Delete acknowledged alerts and audit each delivery at wall-clock `when`; returns how many went."""
        return acknowledge(self.db, alert_ids, when)

    def close(self) -> None:
        """Close the connection."""
        self.db.close()


def opener(path: Path | str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
           autocheckpoint: bool = True) -> Callable[[], Outbox]:
    """What `ApplianceLink` calls on its worker thread to open the outbox at `path` (through `open_db`);
    `autocheckpoint=False` when a `Checkpointer` does the WAL's checkpoints (the hub)."""
    def open_outbox() -> Outbox:
        return Outbox(open_db(path, busy_timeout_ms=busy_timeout_ms, check_integrity=False,
                              autocheckpoint=autocheckpoint))
    return open_outbox
