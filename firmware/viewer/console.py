"""The viewer's live state between the link thread and the web pages: alerts in, decisions out, status.

The `ViewerLink` calls back on its own thread; the console keeps each alert in the `ViewerStore` before
returning (so the link may acknowledge it), then publishes an event to every open page. Pages subscribe
with an asyncio queue each; events cross threads with `call_soon_threadsafe`. The newest preview frame
lives in memory only and is never written anywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from firmware.config import LinkConfig
from firmware.errors import PolicyError
from firmware.hardware.clock import Clock, SystemClock
from firmware.link.keys import KeyPair
from firmware.link.messages import OUTCOMES, Alert, DecisionAck, HandheldEvent, HandheldEventAck, Health, Preview
from firmware.link.viewer_link import ViewerLink
from firmware.viewer.store import AlertFilter, ViewerStore

if TYPE_CHECKING:
    from firmware.viewer.handheld.service import Handhelds

log = logging.getLogger(__name__)

OUTCOME_LABELS = {"confirmed_stopped": "Confirmed – stopped", "confirmed_not_stopped": "Confirmed – not stopped",
                  "false_alert": "False alert"}
PURGE_INTERVAL_S = 3600.0
RELINK_DELAY_S = 2.0
"""Seconds before a link that stopped (the store could not keep an alert) is opened again."""
SNAPSHOT_ALERTS = 300
"""Most alerts a page receives when it opens; older ones are reached through the history filters."""


@dataclass
class Subscriber:
    """One open page: events are put on `queue` from any thread through its event loop."""

    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any]]


class Console:
    """Owns the viewer's store and link; every page sees the same alerts, status and decisions.

    `link_factory` builds the link (tests may pass one bound to their keys); `start()` opens it with what
    the store already holds (`last_seq`, `seen`) so a restarted viewer shows nothing twice.
    """

    def __init__(self, store: ViewerStore, link_config: LinkConfig, *, clock: Clock | None = None,
                 keypair: KeyPair | None = None, appliance_public: bytes | None = None,
                 retention_days: int = 30, sound: bool = True) -> None:
        self.store = store
        self.link_config = link_config
        self.clock = clock or SystemClock()
        self.retention_days = retention_days
        self.sound = sound
        self._keypair = keypair
        self._appliance_public = appliance_public
        self._link: ViewerLink | None = None
        self._link_up = False
        self._health: Health | None = None
        self._health_at = 0.0
        self._preview: Preview | None = None
        self._preview_n = 0
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()          # subscribers list
        self._decide_lock = threading.Lock()   # a decision's send and its ack are recorded in order
        self._rendered: dict[str, float] = {}  # alert id -> wall seconds the page showed it (for the bench)
        self.when_rendered: Callable[[str, float], None] | None = None
        self._stop = threading.Event()
        self._maintainer: threading.Thread | None = None
        self.handhelds: Handhelds | None = None
        """Officers' handhelds, attached before `start()` when they are enabled."""

    # -- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> None:
        """Purge old images, then connect to the appliance with what the store holds."""
        self.store.purge(clock=self.clock, retention_days=self.retention_days)
        self._link = self._open_link()
        if self.handhelds is not None:
            self.handhelds.resend_unacked()
        self._maintainer = threading.Thread(target=self._maintain, name="viewer-maintain", daemon=True)
        self._maintainer.start()

    def _open_link(self) -> ViewerLink:
        """A link that resumes after what the store holds (nothing shown twice), with the decisions that were
        on their way when the last link ended sent again under their own ids (nothing decided twice)."""
        link = ViewerLink(self.link_config, when_alert=self._on_alert,
                          when_decision_ack=self._on_decision_ack, when_health=self._on_health,
                          when_preview=self._on_preview, when_link=self._on_link,
                          when_handheld_ack=self._on_handheld_ack,
                          keypair=self._keypair, appliance_public=self._appliance_public,
                          last_seq=self.store.last_seq(), seen=self.store.seen_ids(), clock=self.clock)
        unconfirmed = self.store.unconfirmed()
        for alert_id, decision_id, outcome, note in unconfirmed:
            link.decide(alert_id, outcome, note, decision_id=decision_id)
        if unconfirmed:
            log.info("sending again %d decisions the appliance had not confirmed", len(unconfirmed))
        return link

    def close(self) -> None:
        """Stop the link and the purge timer; the store is the caller's. Safe to call twice."""
        self._stop.set()
        if self._link is not None:
            self._link.close()
        if self._maintainer is not None:
            self._maintainer.join(timeout=5)

    def __enter__(self) -> Console:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _maintain(self) -> None:
        """Purge old images every hour; reopen the link when it stopped because an alert was not kept."""
        next_purge = self.clock.monotonic() + PURGE_INTERVAL_S
        while not self._stop.wait(RELINK_DELAY_S):
            link = self._link
            if link is not None and link.failure is not None:
                log.warning("reopening the link after: %s", link.failure)
                with self._decide_lock:
                    link.close()
                    self._link = self._open_link()
                    if self.handhelds is not None:
                        self.handhelds.resend_unacked()
            if self.clock.monotonic() >= next_purge:
                next_purge = self.clock.monotonic() + PURGE_INTERVAL_S
                self.store.purge(clock=self.clock, retention_days=self.retention_days)

    # -- pages ---------------------------------------------------------------------------------------

    def subscribe(self) -> Subscriber:
        """A queue of events for one page, bound to the running event loop."""
        sub = Subscriber(asyncio.get_running_loop(), asyncio.Queue())
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def publish(self, event: dict[str, Any]) -> None:
        """Send `event` to every open page; callable from any thread."""
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            try:
                sub.loop.call_soon_threadsafe(sub.queue.put_nowait, event)
            except RuntimeError:
                self.unsubscribe(sub)  # that page's event loop has closed

    def status(self) -> dict[str, Any]:
        """Link state, the newest health (and its age in seconds) and the deployment's counts."""
        health = dataclasses.asdict(self._health) if self._health else None
        deployment = self._health.deployment if self._health else None
        return {"link_up": self._link_up, "health": health,
                "health_age_s": round(self.clock.monotonic() - self._health_at, 1) if self._health else None,
                "deployment": deployment,
                "counts": self.store.counts(deployment) if deployment is not None else None,
                "by_deployment": self.store.counts_by_deployment()}

    def snapshot(self) -> dict[str, Any]:
        """Everything a page needs when it opens."""
        return {"type": "hello", "alerts": self.store.alerts(limit=SNAPSHOT_ALERTS),
                "outcomes": OUTCOME_LABELS, "sound": self.sound, "choices": self.store.choices(),
                "handhelds": self.handhelds is not None,
                "preview": self._preview_n if self._preview else None, **self.status()}

    def preview(self) -> Preview | None:
        """The newest preview frame (pixelated on the appliance; kept in memory only)."""
        return self._preview

    def decide(self, alert_id: str, outcome: str, note: str = "") -> dict[str, Any]:
        """The operator's decision: recorded as on its way, sent over the link; returns the alert's state."""
        if outcome not in OUTCOMES:
            raise PolicyError(f"unknown decision {outcome!r}; expected one of {', '.join(OUTCOMES)}")
        note = note.strip()
        if len(note) > 1000:
            raise PolicyError(f"the note is {len(note)} characters; at most 1000")
        if self._link is None:
            raise PolicyError("the viewer is not connected to an appliance")
        with self._decide_lock:
            current = self.store.alert(alert_id)
            if current is None:
                raise PolicyError(f"no alert {alert_id} on this laptop")
            if current["state"] == "archived":
                raise PolicyError(f"alert {current['seq']} was archived when its deployment closed; it cannot "
                                  "be decided")
            if current["state"] != "pending":
                raise PolicyError(f"alert {current['seq']} is already {current['state']}")
            decision = self._link.decide(alert_id, outcome, note)
            self.store.decision_sent(alert_id, decision.decision_id, outcome, note)
        summary = self.store.alert(alert_id)
        self.publish({"type": "decision", "alert": summary, "accepted": None, "reason": ""})
        return summary or {}

    def rendered(self, alert_id: str, t_wall: float) -> None:
        """A page reports it showed alert `alert_id` at wall time `t_wall` (s): capture-to-screen timing."""
        if alert_id not in self._rendered:
            self._rendered[alert_id] = t_wall
            if self.when_rendered is not None:
                self.when_rendered(alert_id, t_wall)

    # -- link callbacks (link thread) ----------------------------------------------------------------

    def _on_alert(self, alert: Alert) -> None:
        deployment = self._health.deployment if self._health else None
        if self.store.keep_alert(alert, received=self.clock.time(), deployment=deployment):
            self.publish({"type": "alert", "alert": self.store.alert(alert.alert_id),
                          "counts": self.store.counts(deployment) if deployment is not None else None,
                          "choices": self.store.choices()})

    def _on_decision_ack(self, ack: DecisionAck) -> None:
        with self._decide_lock:
            changed = self.store.decision_done(ack.alert_id, ack.decision_id, ack.accepted, ack.reason,
                                               self.clock.time())
        if changed:
            self.publish({"type": "decision", "alert": self.store.alert(ack.alert_id),
                          "accepted": ack.accepted, "reason": ack.reason, **self.status()})
            if not ack.accepted and self._health is not None:
                self._close_deployments(self._health.deployment)  # refused because its deployment closed

    def _close_deployments(self, open_now: str | None) -> None:
        """Archive what the laptop holds of every deployment but `open_now`, as the van did at its stop."""
        with self._decide_lock:
            result = self.store.close_deployments(open_now=open_now, at=self.clock.time())
        if result is not None:
            self.publish({"type": "archived", "alerts": [self.store.alert(i) for i in result.archived],
                          **self.status()})

    def send_handheld_event(self, event: HandheldEvent) -> None:
        """Hand a handheld event (already kept by the handheld store) to the link; resent until acknowledged."""
        if self._link is not None:
            self._link.send_handheld_event(event)

    def _on_handheld_ack(self, ack: HandheldEventAck) -> None:
        if self.handhelds is not None:
            self.handhelds.on_ack(ack)

    def _on_health(self, health: Health) -> None:
        changed = self._health is None or self._health.deployment != health.deployment
        self._health, self._health_at = health, self.clock.monotonic()
        if changed:
            self._close_deployments(health.deployment)
        if self.handhelds is not None:
            self.handhelds.deployment_changed(health.deployment)
        self.publish({"type": "status", **self.status()})

    def _on_preview(self, preview: Preview) -> None:
        self._preview = preview
        self._preview_n += 1
        self.publish({"type": "preview", "n": self._preview_n, "camera": preview.camera,
                      "t_wall": preview.t_wall})

    def _on_link(self, up: bool) -> None:
        self._link_up = up
        self.publish({"type": "status", **self.status()})

    def history(self, where: AlertFilter, *, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """One page of the history, newest first, and how many alerts match in all."""
        return {"alerts": self.store.alerts(where, limit=limit, offset=offset), "total": self.store.count(where),
                "offset": offset, "limit": limit}
