"""Alerts: persist, then send. One transaction writes the alert, its outbox message, its audit row and stats.

The outbox holds each alert's wire message (a versioned JSON header plus the two JPEGs) until the laptop
acknowledges it; the link resends in `seq` order. Operator decisions come back through `record_decision`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from firmware.errors import PolicyError, StorageError
from firmware.hardware.clock import Clock, SystemClock
from firmware.store import audit
from firmware.store.db import transaction

ALERT_SCHEMA = 1
DECISIONS: tuple[str, ...] = ("confirmed", "false_alert", "not_stopped")
# stats column counting each decision
DECISION_COLUMN = {"confirmed": "confirmed", "false_alert": "false_alerts", "not_stopped": "not_stopped"}


@dataclass(frozen=True)
class NewAlert:
    """An alert as the decide stage raises it. Times: `t_wall` Unix seconds, `t_mono` monotonic seconds;
    `score` the calibrated 0..1 match score; JPEGs are the full-resolution probe crop and the subject's
    reference image; `name` goes to the operator in the message header only, not into the alerts table."""

    deployment_id: int
    t_wall: float
    t_mono: float
    camera: str
    track_id: int
    subject_id: str
    name: str
    score: float
    category: str
    reason: str
    probe_jpeg: bytes | None
    reference_jpeg: bytes | None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class AlertHeader:
    """The JSON header frame of an alert message on the link (schema-versioned; JPEGs travel as frames)."""

    alert_id: str
    seq: int
    deployment_id: int
    t_wall: float
    camera: str
    track_id: int
    subject_id: str
    name: str
    score: float
    category: str
    reason: str
    has_probe: bool
    has_reference: bool
    schema: int = ALERT_SCHEMA
    type: str = "alert"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AlertHeader:
        """Parse a header; refuses another schema version or unknown fields."""
        data = json.loads(text)
        if data.get("schema") != ALERT_SCHEMA or data.get("type") != "alert":
            raise StorageError(f"alert header has schema {data.get('schema')!r} type {data.get('type')!r}; "
                               f"expected schema {ALERT_SCHEMA} type 'alert'")
        return cls(**data)


@dataclass(frozen=True)
class OutboxItem:
    """One unacknowledged alert message, ready to send: header JSON plus the JPEG frames (None if purged)."""

    alert_id: str
    seq: int
    header: str
    probe_jpeg: bytes | None
    reference_jpeg: bytes | None
    created: float
    attempts: int
    last_sent: float | None


def record_alert(db: sqlite_utils.Database, alert: NewAlert, *, actor: str) -> int:
    """Write the alert, its outbox message, its audit row and the stats in ONE transaction; return its seq.

    Refuses (PolicyError) unless `alert.deployment_id` is the open deployment. Nothing is written if any
    step fails.
    """
    if not 0.0 <= alert.score <= 1.0:
        raise StorageError(f"alert score {alert.score} is outside 0..1")
    with transaction(db):
        open_row = db.execute("SELECT id FROM deployments WHERE stopped IS NULL").fetchone()
        if open_row is None or open_row[0] != alert.deployment_id:
            raise PolicyError(f"alert for deployment {alert.deployment_id} refused: it is not the open one")
        seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts").fetchone()[0])
        db.execute(
            "INSERT INTO alerts (id, seq, deployment_id, t_wall, t_mono, camera, track_id, subject_id, "
            "score, probe_jpeg, reference_jpeg, category, reason, state) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'pending')",
            [alert.id, seq, alert.deployment_id, alert.t_wall, alert.t_mono, alert.camera, alert.track_id,
             alert.subject_id, alert.score, alert.probe_jpeg, alert.reference_jpeg, alert.category,
             alert.reason])
        header = AlertHeader(alert.id, seq, alert.deployment_id, alert.t_wall, alert.camera, alert.track_id,
                             alert.subject_id, alert.name, alert.score, alert.category, alert.reason,
                             alert.probe_jpeg is not None, alert.reference_jpeg is not None)
        db.execute("INSERT INTO outbox (alert_id, seq, header, probe_jpeg, reference_jpeg, created) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   [alert.id, seq, header.to_json(), alert.probe_jpeg, alert.reference_jpeg, alert.t_wall])
        db.execute("UPDATE stats SET alerts = alerts + 1, pending = pending + 1, updated = ? "
                   "WHERE deployment_id = ?", [alert.t_wall, alert.deployment_id])
        audit.append(db, time=alert.t_wall, actor=actor, action="alert",
                     details={"alert_id": alert.id, "seq": seq, "deployment_id": alert.deployment_id,
                              "camera": alert.camera, "track_id": alert.track_id,
                              "subject_id": alert.subject_id, "score": alert.score})
    return seq


def record_decision(db: sqlite_utils.Database, alert_id: str, decision: str, *, clock: Clock, actor: str,
                    note: str = "") -> None:
    """Record the operator's decision on a pending alert (confirmed, false_alert, not_stopped); audited.

    A second decision on the same alert is refused: corrections are a new audited action, not an overwrite.
    """
    if decision not in DECISIONS:
        raise StorageError(f"unknown decision {decision!r}; expected one of {', '.join(DECISIONS)}")
    now = clock.time()
    with transaction(db):
        row = db.execute("SELECT deployment_id, state, decision FROM alerts WHERE id = ?",
                         [alert_id]).fetchone()
        if row is None:
            raise StorageError(f"no alert with id {alert_id}")
        deployment_id, state, previous = row
        if state == "decided":
            raise PolicyError(f"alert {alert_id} was already decided as {previous}")
        db.execute("UPDATE alerts SET state = 'decided', decision = ?, decision_note = ?, decided_at = ? "
                   "WHERE id = ?", [decision, note or None, now, alert_id])
        column = DECISION_COLUMN[decision]
        db.execute(f"UPDATE stats SET {column} = {column} + 1, pending = MAX(pending - 1, 0), updated = ? "
                   "WHERE deployment_id = ?", [now, deployment_id])
        audit.append(db, time=now, actor=actor, action="decision",
                     details={"alert_id": alert_id, "deployment_id": deployment_id, "decision": decision,
                              "note": note})


def pending_outbox(db: sqlite_utils.Database, limit: int | None = None) -> list[OutboxItem]:
    """Unacknowledged alert messages in capture order (`seq`), oldest first."""
    sql = ("SELECT alert_id, seq, header, probe_jpeg, reference_jpeg, created, attempts, last_sent "
           "FROM outbox ORDER BY seq")
    params: list[Any] = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return [OutboxItem(*row) for row in db.execute(sql, params)]


def mark_sent(db: sqlite_utils.Database, alert_id: str, *, clock: Clock) -> None:
    """Count one send attempt of an outbox message (for resend back-off and the health page)."""
    with transaction(db):
        db.execute("UPDATE outbox SET attempts = attempts + 1, last_sent = ? WHERE alert_id = ?",
                   [clock.time(), alert_id])


def ack(db: sqlite_utils.Database, alert_id: str, *, clock: Clock | None = None, actor: str = "link") -> bool:
    """The laptop acknowledged the alert: drop its outbox message and audit the delivery.

    Returns False (and audits nothing) when the message was already gone, e.g. a repeated ack.
    """
    now = (clock or SystemClock()).time()
    with transaction(db):
        cur = db.execute("DELETE FROM outbox WHERE alert_id = ?", [alert_id])
        delivered = cur.rowcount > 0
        if delivered:
            audit.append(db, time=now, actor=actor, action="alert_delivered", details={"alert_id": alert_id})
    return delivered
