"""What handhelds may do and see: pairing by one-time token, revocation, confirmed alerts sent to chosen
handhelds, their answers back to the appliance, and the end of what a handheld shows.

A handheld sees only alerts the operator confirmed (and the appliance acknowledged as confirmed) and then
sent to it: never the preview, a pending alert or anything of unmatched people. What it shows goes when an
officer records an outcome, after `ttl_s` (default 30 min), when the device is revoked, and when the
deployment ends. Its feed is polled with a cursor (`seq`), and each poll also names the alerts still open,
so a reloaded page, a phone woken up or a Wi-Fi gap shows everything missed and nothing twice.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from firmware.errors import PolicyError
from firmware.hardware.clock import Clock, SystemClock
from firmware.link.messages import HandheldEvent, HandheldEventAck
from firmware.viewer.handheld.store import Device, HandheldStore, sha256
from firmware.viewer.store import ViewerStore

log = logging.getLogger(__name__)

ANSWERS = ("engaged", "not_located", "arrested", "advised", "no_action")
OUTCOMES = ("arrested", "advised", "no_action")
CONFIRMED = ("confirmed_stopped", "confirmed_not_stopped")
MAX_CALLSIGN = 40


@dataclass(frozen=True)
class Pairing:
    """A one-time pairing offer: the `token` (shown once, in the QR code) and when it lapses (Unix s)."""

    token: str
    callsign: str
    expires: float


def offer_id(token_sha256: str) -> str:
    """A short public name of a pairing offer (from its stored hash): the operator's page hides the QR code
    once the offer is no longer open (used or lapsed), without ever learning the token again."""
    return token_sha256[:16]


class Handhelds:
    """The handheld service; `send` hands an event to the link (it was kept in the store first)."""

    def __init__(self, store: HandheldStore, alerts: ViewerStore, *, send: Callable[[HandheldEvent], None],
                 clock: Clock | None = None, ttl_s: float = 1800.0, pairing_s: float = 600.0,
                 poll_s: float = 2.0, actor: str = "operator:viewer") -> None:
        self.store = store
        self.alerts = alerts
        self.send = send
        self.clock = clock or SystemClock()
        self.ttl_s = ttl_s
        self.pairing_s = pairing_s
        self.poll_s = poll_s
        """Seconds between a handheld page's polls (told to the page in every feed)."""
        self.actor = actor
        self.deployment: str | None = None
        self.when_changed: Callable[[dict[str, Any]], None] | None = None

    # -- pairing ---------------------------------------------------------------------------------------

    def offer_pairing(self, callsign: str) -> Pairing:
        """A one-time token for a new handheld named `callsign`, valid for `pairing_s` seconds."""
        callsign = " ".join(callsign.split())
        if not callsign or len(callsign) > MAX_CALLSIGN:
            raise PolicyError(f"a callsign is 1..{MAX_CALLSIGN} characters, got {len(callsign)}")
        token = secrets.token_urlsafe(24)
        now = self.clock.time()
        with self.store.write() as db:
            db.execute("INSERT INTO pairings (token_sha256, callsign, created, expires) VALUES (?,?,?,?)",
                       [sha256(token), callsign, now, now + self.pairing_s])
        return Pairing(token, callsign, now + self.pairing_s)

    def pair(self, token: str) -> tuple[Device, str]:
        """Redeem a pairing token once: a new device and its credential (returned once, stored hashed)."""
        now = self.clock.time()
        credential = secrets.token_urlsafe(32)
        device_id = str(uuid.uuid4())
        with self.store.write() as db:
            row = db.execute("SELECT callsign, expires, used FROM pairings WHERE token_sha256 = ?",
                             [sha256(token)]).fetchone()
            if row is None or row[2] is not None or row[1] < now:
                raise PolicyError("this pairing code is unknown, already used or expired; ask the operator "
                                  "for a new one")
            callsign = row[0]
            db.execute("UPDATE pairings SET used = ? WHERE token_sha256 = ?", [now, sha256(token)])
            db.execute("INSERT INTO devices (id, callsign, credential_sha256, paired) VALUES (?,?,?,?)",
                       [device_id, callsign, sha256(credential), now])
            event = self._event(db, "paired", device_id, callsign, None, now)
        self._sent(event)
        log.info("handheld %s paired (%s)", callsign, device_id)
        return Device(device_id, callsign, now, None, None), credential

    def revoke(self, device_id: str) -> Device:
        """Revoke a device: its credential stops working and everything it was shown is closed."""
        now = self.clock.time()
        with self.store.write() as db:
            row = db.execute("SELECT callsign, revoked FROM devices WHERE id = ?", [device_id]).fetchone()
            if row is None:
                raise PolicyError(f"no handheld {device_id}")
            if row[1] is not None:
                raise PolicyError(f"handheld {row[0]} is already revoked")
            db.execute("UPDATE devices SET revoked = ? WHERE id = ?", [now, device_id])
            self._close(db, "device_id = ?", [device_id], "revoked", now)
            event = self._event(db, "revoked", device_id, row[0], None, now)
        self._sent(event)
        log.info("handheld %s revoked", row[0])
        return Device(device_id, row[0], 0.0, now, None)

    def authenticate(self, credential: str | None) -> Device | None:
        """The active device holding `credential`, or None (unknown, revoked or missing)."""
        if not credential:
            return None
        device = self.store.device_by_credential(credential)
        if device is not None:
            with self.store.write() as db:
                db.execute("UPDATE devices SET last_seen = ? WHERE id = ?", [self.clock.time(), device.id])
        return device

    # -- dispatch ----------------------------------------------------------------------------------------

    def dispatch(self, alert_id: str, device_ids: Iterable[str] | None) -> list[str]:
        """Send a confirmed alert to the given handhelds (None: every paired one); returns the callsigns it
        went to (sending again renews its time; an alert closed on a handheld is not reopened there).

        Refused unless the appliance acknowledged the operator's confirmation of this alert.
        """
        alert = self.alerts.alert(alert_id)
        if alert is None:
            raise PolicyError(f"no alert {alert_id} on this laptop")
        if alert["state"] != "decided" or alert["outcome"] not in CONFIRMED:
            raise PolicyError(f"alert {alert['seq']} is not confirmed (it is {alert['state']}"
                              + (f", {alert['outcome']}" if alert["outcome"] else "")
                              + "); only confirmed alerts go to handhelds")
        active = {d.id: d for d in self.store.devices(active_only=True)}
        chosen = list(active) if device_ids is None else list(dict.fromkeys(device_ids))
        unknown = [d for d in chosen if d not in active]
        if unknown:
            raise PolicyError(f"no paired handheld {unknown[0]}")
        if not chosen:
            raise PolicyError("no handheld chosen (or none paired)")
        now = self.clock.time()
        events = []
        with self.store.write() as db:
            for device_id in chosen:
                seq = self.store.next_seq(db)
                cur = db.execute(
                    "INSERT INTO dispatches (device_id, alert_id, deployment, sent, expires, seq) "
                    "VALUES (?,?,?,?,?,?) ON CONFLICT (device_id, alert_id) DO UPDATE SET sent = excluded.sent, "
                    "expires = excluded.expires, seq = excluded.seq WHERE closed IS NULL",
                    [device_id, alert_id, alert["deployment"], now, now + self.ttl_s, seq])
                if cur.rowcount:
                    events.append(self._event(db, "dispatched", device_id, active[device_id].callsign,
                                              alert_id, now))
        if not events:
            raise PolicyError(f"alert {alert['seq']} is already closed on the chosen handhelds")
        for event in events:
            self._sent(event)
        return [e.callsign for e in events]

    def answer(self, device: Device, alert_id: str, kind: str) -> dict[str, Any]:
        """An officer's answer on an alert shown on their handheld; an outcome closes it on every handheld."""
        if kind not in ANSWERS:
            raise PolicyError(f"unknown answer {kind!r}; expected one of {', '.join(ANSWERS)}")
        now = self.clock.time()
        with self.store.write() as db:
            if not self._is_open(db, device.id, alert_id, now):
                raise PolicyError("this alert is no longer open on this handheld")
            db.execute("UPDATE dispatches SET answer = ?, seq = ? WHERE device_id = ? AND alert_id = ?",
                       [kind, self.store.next_seq(db), device.id, alert_id])
            if kind in OUTCOMES:
                self._close(db, "alert_id = ?", [alert_id], f"outcome {kind}", now)
            event = self._event(db, kind, device.id, device.callsign, alert_id, now)
        self._sent(event)
        return {"alert_id": alert_id, "answer": kind, "closed": kind in OUTCOMES}

    # -- what a handheld sees --------------------------------------------------------------------------

    def feed(self, device: Device, after: int = 0) -> dict[str, Any]:
        """The alerts open on `device`: details of those changed after cursor `after`, and every open id."""
        now = self.clock.time()
        rows = self.store.read("SELECT alert_id, sent, expires, answer, seq FROM dispatches WHERE device_id = ? "
                               "AND closed IS NULL AND expires > ? ORDER BY sent", [device.id, now])
        items = []
        for alert_id, sent, expires, answer, seq in rows:
            if seq <= after:
                continue
            alert = self.alerts.alert(alert_id)
            if alert is None:
                continue
            items.append({"alert_id": alert_id, "seq": seq, "category": alert["category"],
                          "reason": alert["reason"], "t_wall": alert["t_wall"], "camera": alert["camera"],
                          "deployment": alert["deployment"], "sent": sent, "expires": expires,
                          "answer": answer, "has_probe": alert["has_probe"],
                          "has_reference": alert["has_reference"], "has_context": alert["has_context"]})
        cursor = max([after, *(r[4] for r in rows)])
        return {"callsign": device.callsign, "cursor": cursor, "now": now, "poll_s": self.poll_s,
                "open": [r[0] for r in rows], "alerts": items}

    def image(self, device: Device, alert_id: str, which: str) -> bytes | None:
        """An image of an alert open on `device`; None otherwise (never for anything it was not sent)."""
        with self.store.write() as db:
            if not self._is_open(db, device.id, alert_id, self.clock.time()):
                return None
        return self.alerts.image(alert_id, which)

    def deployment_changed(self, deployment: str | None) -> int:
        """The appliance's current deployment (None: none open): close what handhelds show of any other."""
        if deployment == self.deployment and deployment is not None:
            return 0
        self.deployment = deployment
        with self.store.write() as db:
            if deployment is None:
                closed = self._close(db, "1", [], "deployment ended", self.clock.time())
            else:
                closed = self._close(db, "deployment IS NOT NULL AND deployment != ?", [deployment],
                                     "deployment ended", self.clock.time())
        if closed:
            log.info("deployment over: %d alerts removed from handhelds", closed)
        return closed

    def status(self) -> dict[str, Any]:
        """Devices and open dispatches, for the operator's screen."""
        now = self.clock.time()
        open_rows = self.store.read("SELECT device_id, alert_id, answer FROM dispatches WHERE closed IS NULL "
                                    "AND expires > ?", [now])
        answers = self.store.read("SELECT alert_id, callsign, kind, t_wall FROM events WHERE kind IN "
                                  f"({', '.join('?' * len(ANSWERS))}) AND t_wall > ? ORDER BY t_wall",
                                  [*ANSWERS, now - self.ttl_s])
        offers = self.store.read("SELECT token_sha256 FROM pairings WHERE used IS NULL AND expires > ?", [now])
        return {"devices": [d.to_dict() for d in self.store.devices(active_only=True)],
                "offers_open": [offer_id(r[0]) for r in offers],
                "open": [{"device_id": r[0], "alert_id": r[1], "answer": r[2]} for r in open_rows],
                "answers": [{"alert_id": r[0], "callsign": r[1], "answer": r[2], "t_wall": r[3]}
                            for r in answers]}

    # -- the link ----------------------------------------------------------------------------------------

    def resend_unacked(self) -> int:
        """Hand every unacknowledged event to the link again (at start, or on a new link)."""
        events = self.store.unacked_events()
        for event in events:
            self.send(event)
        return len(events)

    def on_ack(self, ack: HandheldEventAck) -> None:
        self.store.event_acked(ack.event_id, ack.accepted, ack.reason, self.clock.time())

    # -- internals ---------------------------------------------------------------------------------------

    def _is_open(self, db: Any, device_id: str, alert_id: str, now: float) -> bool:
        return db.execute("SELECT 1 FROM dispatches d JOIN devices v ON v.id = d.device_id WHERE d.device_id = ? "
                          "AND d.alert_id = ? AND d.closed IS NULL AND d.expires > ? AND v.revoked IS NULL",
                          [device_id, alert_id, now]).fetchone() is not None

    def _close(self, db: Any, where: str, params: list[Any], reason: str, now: float) -> int:
        return int(db.execute(f"UPDATE dispatches SET closed = ?, close_reason = ? WHERE closed IS NULL AND {where}",
                              [now, reason, *params]).rowcount)

    def _event(self, db: Any, kind: str, device_id: str, callsign: str, alert_id: str | None,
               now: float) -> HandheldEvent:
        event = HandheldEvent(event_id=str(uuid.uuid4()), kind=kind, device_id=device_id, callsign=callsign,
                              alert_id=alert_id, t_wall=now)
        actor = f"handheld:{callsign}" if kind in ANSWERS else self.actor
        self.store.add_event(db, event, actor)
        return event

    def _sent(self, event: HandheldEvent) -> None:
        """After the event's transaction committed: to the link, and to the operator's screen."""
        self.send(event)
        if self.when_changed is not None:
            self.when_changed({"type": "handheld", "kind": event.kind, "callsign": event.callsign,
                               "alert_id": event.alert_id, "t_wall": event.t_wall})
