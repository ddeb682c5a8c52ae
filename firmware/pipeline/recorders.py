"""What the link's thread records in the database: the operator's decisions and the handhelds' events.

Both run on the link's worker thread, each call on a connection of its own (opened through `open_db`), and
are idempotent by their ids, because the viewer resends until it is answered. An LfrError (unknown alert,
decided already with another decision, database locked) goes back to the viewer as a refusal.
"""

from __future__ import annotations

import logging
from pathlib import Path

from firmware.hardware.clock import Clock
from firmware.link.messages import Decision, HandheldEvent
from firmware.store.alerts import record_decision
from firmware.store.db import DEFAULT_BUSY_TIMEOUT_MS, open_db
from firmware.store.handheld import record_handheld_event

log = logging.getLogger(__name__)


class LinkRecorders:
    """`when_decision` and `when_handheld_event` of `ApplianceLink`, writing to the database at `db_path`."""

    def __init__(self, db_path: Path | str, *, clock: Clock,
                 busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, autocheckpoint: bool = True) -> None:
        self.db_path = Path(db_path)
        self.clock = clock
        self.busy_timeout_ms = busy_timeout_ms
        self.autocheckpoint = autocheckpoint

    def record_decision(self, decision: Decision) -> None:
        """The operator's decision into the alert row, audit and stats; a resent decision_id is answered."""
        db = open_db(self.db_path, busy_timeout_ms=self.busy_timeout_ms, check_integrity=False,
                     autocheckpoint=self.autocheckpoint)
        try:
            if not record_decision(db, decision.alert_id, decision.outcome, clock=self.clock, actor="operator",
                                   note=decision.note, decision_id=decision.decision_id):
                log.info("decision %s on alert %s was recorded before; answered again", decision.decision_id,
                         decision.alert_id)
        finally:
            db.close()

    def record_handheld_event(self, event: HandheldEvent) -> None:
        """A handheld pairing, revocation, dispatch or officer's answer into the audit log (answers also into
        the alert row and stats); a resent event_id is answered."""
        db = open_db(self.db_path, busy_timeout_ms=self.busy_timeout_ms, check_integrity=False,
                     autocheckpoint=self.autocheckpoint)
        try:
            if not record_handheld_event(db, event, clock=self.clock, actor=f"handheld:{event.callsign}"):
                log.info("handheld event %s was recorded before; answered again", event.event_id)
        finally:
            db.close()
