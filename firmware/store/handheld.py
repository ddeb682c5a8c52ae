"""Officers' handheld events on the appliance: pairing, revocation and dispatch are audited; answers from
the field (engaged, not located, outcome) also land on the alert row and in the deployment's stats.

Events come from the laptop over the link (`HandheldEvent`); each is recorded once by `event_id`, so a
repeat after a restart changes nothing. Only alerts the operator confirmed may be sent to or answered by a
handheld; an outcome closes the alert in the field and a second outcome is refused.
"""

from __future__ import annotations

import sqlite_utils

from firmware.errors import PolicyError, StorageError
from firmware.hardware.clock import Clock
from firmware.link.messages import HANDHELD_KINDS, HandheldEvent
from firmware.store import audit
from firmware.store.db import transaction

STATUSES = ("engaged", "not_located")
FIELD_OUTCOMES = ("arrested", "advised", "no_action")
CONFIRMED = ("confirmed_stopped", "confirmed_not_stopped")


def record_handheld_event(db: sqlite_utils.Database, event: HandheldEvent, *, clock: Clock,
                          actor: str) -> bool:
    """Record `event` (audit row; for answers also alert row and stats) in one transaction.

    Returns False when it was already recorded. Raises PolicyError for an alert that is unknown, not
    confirmed, or already closed with an outcome.
    """
    if event.kind not in HANDHELD_KINDS:
        raise StorageError(f"unknown handheld event {event.kind!r}")
    now = clock.time()
    with transaction(db):
        if db.execute("SELECT 1 FROM handheld_events WHERE event_id = ?", [event.event_id]).fetchone():
            return False
        deployment_id = None
        if event.kind in ("paired", "revoked"):
            row = db.execute("SELECT id FROM deployments WHERE stopped IS NULL").fetchone()
            deployment_id = row[0] if row else None
        else:
            deployment_id = _answerable(db, event)
        if event.kind in STATUSES + FIELD_OUTCOMES:
            first = db.execute("SELECT 1 FROM handheld_events WHERE alert_id = ? AND kind = ?",
                               [event.alert_id, event.kind]).fetchone() is None
            column = "field_outcome" if event.kind in FIELD_OUTCOMES else "field_status"
            db.execute(f"UPDATE alerts SET {column} = ?, field_callsign = ?, field_updated = ? WHERE id = ?",
                       [event.kind, event.callsign, now, event.alert_id])
            if first:
                db.execute(f"UPDATE stats SET field_{event.kind} = field_{event.kind} + 1, updated = ? "
                           "WHERE deployment_id = ?", [now, deployment_id])
        db.execute("INSERT INTO handheld_events (event_id, kind, device_id, callsign, alert_id, t_wall, recorded) "
                   "VALUES (?,?,?,?,?,?,?)", [event.event_id, event.kind, event.device_id, event.callsign,
                                              event.alert_id, event.t_wall, now])
        audit.append(db, time=now, actor=actor, action=f"handheld_{event.kind}",
                     details={"event_id": event.event_id, "device_id": event.device_id,
                              "callsign": event.callsign, "alert_id": event.alert_id,
                              "deployment_id": deployment_id, "at": event.t_wall})
    return True


def _answerable(db: sqlite_utils.Database, event: HandheldEvent) -> int:
    """The alert's deployment id, when the alert may go to or be answered by a handheld."""
    if event.alert_id is None:
        raise PolicyError(f"handheld event {event.kind} names no alert")
    row = db.execute("SELECT deployment_id, state, decision, field_outcome FROM alerts WHERE id = ?",
                     [event.alert_id]).fetchone()
    if row is None:
        raise PolicyError(f"no alert {event.alert_id}")
    deployment_id, state, decision, outcome = row
    if state != "decided" or decision not in CONFIRMED:
        raise PolicyError(f"alert {event.alert_id} was not confirmed by the operator; handhelds get only "
                          "confirmed alerts")
    if outcome is not None and event.kind != "dispatched":
        raise PolicyError(f"alert {event.alert_id} is already closed in the field as {outcome}")
    return int(deployment_id)
