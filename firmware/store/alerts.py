"""Alerts: persist, then send. One transaction writes the alert, its outbox message, its audit row and stats.

One alert type on each side of the hub: the camera's `AlertCandidate` (pipeline/messages.py) comes in; the
hub asks for it to be recorded with what the watchlist adds (a `NewAlert`: the request, not a third alert),
and `record_alert` returns the stored and sent alert, the link's `Alert`, numbered with its `seq`. The
subject is `subject_id` and `subject_name` everywhere. The outbox holds each alert's wire message (a
versioned JSON header plus the two JPEGs) until the laptop acknowledges it; the link resends in `seq` order.
Operator decisions come back through `record_decision`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import sqlite_utils

from firmware.errors import PolicyError, StorageError
from firmware.hardware.clock import Clock
from firmware.link.messages import Alert
from firmware.store import audit, outbox
from firmware.store.db import transaction

# The operator's outcomes, the same words as the link's `Decision.outcome`; each counts in one stats column.
DECISION_COLUMN = {"confirmed_stopped": "confirmed", "confirmed_not_stopped": "not_stopped",
                   "false_alert": "false_alerts"}
DECISIONS: tuple[str, ...] = tuple(DECISION_COLUMN)


@dataclass(frozen=True)
class NewAlert:
    """What the hub asks `record_alert` to record. Times: `t_wall` Unix seconds, `t_mono` monotonic seconds;
    `score` the calibrated 0..1 match score; JPEGs are the full-resolution probe crop and the subject's
    reference image; `subject_name` goes to the operator in the message header only, not into the alerts
    table."""

    deployment_id: int
    t_wall: float
    t_mono: float
    camera: str
    track_id: int
    subject_id: str
    subject_name: str
    score: float
    category: str
    reason: str
    probe_jpeg: bytes | None
    reference_jpeg: bytes | None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    context_jpeg: bytes | None = None
    """The whole frame at preview size, the subject outlined and every other face pixelated (camera-made)."""


def record_alert(db: sqlite_utils.Database, alert: NewAlert, *, actor: str, keep_probe: bool = True,
                 min_seq: int = 1) -> Alert:
    """Write the alert, its outbox message, its audit row and the stats in ONE transaction; return the alert
    as stored and sent (with its `seq`).

    Refuses (PolicyError) unless `alert.deployment_id` is the open deployment. Nothing is written if any
    step fails. `keep_probe=False` (disk nearly full) leaves the alerts row without the probe crop while the
    outbox message still carries it to the operator; the audit row says so. `min_seq`: the lowest seq the
    alert may take (above any seq the hub handed out to alerts it could not write, so none is reused).
    """
    if not 0.0 <= alert.score <= 1.0:
        raise StorageError(f"alert score {alert.score} is outside 0..1")
    with transaction(db):
        open_row = db.execute("SELECT id FROM deployments WHERE stopped IS NULL").fetchone()
        if open_row is None or open_row[0] != alert.deployment_id:
            raise PolicyError(f"alert for deployment {alert.deployment_id} refused: it is not the open one")
        seq = max(int(min_seq), int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM alerts").fetchone()[0]))
        db.execute(
            "INSERT INTO alerts (id, seq, deployment_id, t_wall, t_mono, camera, track_id, subject_id, "
            "score, probe_jpeg, reference_jpeg, category, reason, state, context_jpeg) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,'pending',?)",
            [alert.id, seq, alert.deployment_id, alert.t_wall, alert.t_mono, alert.camera, alert.track_id,
             alert.subject_id, alert.score, alert.probe_jpeg if keep_probe else None, alert.reference_jpeg,
             alert.category, alert.reason, (alert.context_jpeg or None) if keep_probe else None])
        sent = Alert(alert_id=alert.id, seq=seq, t_wall=alert.t_wall, camera=alert.camera,
                     track_id=alert.track_id, subject_id=alert.subject_id, subject_name=alert.subject_name,
                     category=alert.category, reason=alert.reason, score=alert.score,
                     probe_jpeg=alert.probe_jpeg or b"", reference_jpeg=alert.reference_jpeg or b"",
                     context_jpeg=alert.context_jpeg or b"")
        outbox.enqueue(db, sent, created=alert.t_wall)
        db.execute("UPDATE stats SET alerts = alerts + 1, pending = pending + 1, updated = ? "
                   "WHERE deployment_id = ?", [alert.t_wall, alert.deployment_id])
        audit.append(db, time=alert.t_wall, actor=actor, action="alert",
                     details={"alert_id": alert.id, "seq": seq, "deployment_id": alert.deployment_id,
                              "camera": alert.camera, "track_id": alert.track_id,
                              "subject_id": alert.subject_id, "score": alert.score,
                              **({} if keep_probe else {"probe_kept": False})})
    return sent


def record_decision(db: sqlite_utils.Database, alert_id: str, decision: str, *, clock: Clock, actor: str,
                    note: str = "", decision_id: str | None = None) -> bool:
    """Record the operator's decision on a pending alert (one of DECISIONS); audited. True when recorded.

    A second decision on the same alert is refused: corrections are a new audited action, not an overwrite.
    The same `decision_id` again (the viewer resending after a lost ack or a restart) is answered with False
    and nothing written.
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
        if state == "decided" and decision_id is not None and db.execute(
                "SELECT 1 FROM audit WHERE action = 'decision' AND json_extract(details, '$.alert_id') = ? "
                "AND json_extract(details, '$.decision_id') = ?", [alert_id, decision_id]).fetchone():
            return False
        if state == "decided":
            raise PolicyError(f"alert {alert_id} was already decided as {previous}")
        stopped = db.execute("SELECT stopped FROM deployments WHERE id = ?", [deployment_id]).fetchone()
        if stopped is not None and stopped[0] is not None:
            raise PolicyError(f"alert {alert_id} belongs to deployment {deployment_id}, which is closed; "
                              "its undecided alerts are archived and cannot be decided")
        db.execute("UPDATE alerts SET state = 'decided', decision = ?, decision_note = ?, decided_at = ? "
                   "WHERE id = ?", [decision, note or None, now, alert_id])
        column = DECISION_COLUMN[decision]
        db.execute(f"UPDATE stats SET {column} = {column} + 1, pending = MAX(pending - 1, 0), updated = ? "
                   "WHERE deployment_id = ?", [now, deployment_id])
        audit.append(db, time=now, actor=actor, action="decision",
                     details={"alert_id": alert_id, "deployment_id": deployment_id, "decision": decision,
                              "note": note, **({"decision_id": decision_id} if decision_id else {})})
    return True
