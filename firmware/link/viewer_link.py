"""The operator laptop's end of the link: a CURVE client of the appliance (DEALER: alerts; SUB: preview).

The DEALER talks to the appliance's ROUTER; each (re)connection is a new routing id there, which tells the
appliance to send every pending alert again. The SUB is conflated (newest preview frame only). One worker
thread owns both sockets; `decide` may be called from any thread.

Callbacks run on the worker thread. `when_alert(alert)` must keep the alert (e.g. write it to the viewer's
database) before returning: the appliance drops it from its outbox once the acknowledgement, sent right after,
arrives. A viewer that restarts passes what it already holds (`last_seq`, `seen`) so nothing is shown twice.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterable
from types import TracebackType

import zmq

from firmware.config import LinkConfig
from firmware.errors import LinkError
from firmware.hardware.clock import Clock, SystemClock
from firmware.link import sockets
from firmware.link.keys import KeyPair, load_keypair, load_public
from firmware.link.messages import (
    Alert,
    Decision,
    DecisionAck,
    HandheldEvent,
    HandheldEventAck,
    Health,
    Heartbeat,
    Message,
    Preview,
)
from firmware.link.protocol import ViewerProtocol

log = logging.getLogger(__name__)


class ViewerLink:
    """Receives alerts in capture order exactly once, sends decisions until acknowledged, tracks the link."""

    def __init__(self, config: LinkConfig, *, when_alert: Callable[[Alert], None],
                 when_decision_ack: Callable[[DecisionAck], None] | None = None,
                 when_health: Callable[[Health], None] | None = None,
                 when_preview: Callable[[Preview], None] | None = None,
                 when_link: Callable[[bool], None] | None = None,
                 when_handheld_ack: Callable[[HandheldEventAck], None] | None = None,
                 keypair: KeyPair | None = None, appliance_public: bytes | None = None,
                 last_seq: int = 0, seen: Iterable[str] = (), clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.when_alert = when_alert
        self.when_decision_ack = when_decision_ack
        self.when_health = when_health
        self.when_preview = when_preview
        self.when_link = when_link
        self.when_handheld_ack = when_handheld_ack
        self.protocol = ViewerProtocol(sockets.timings(config), last_seq, seen)
        self.failure: BaseException | None = None
        keypair = keypair or load_keypair(config.secret_key)
        server = appliance_public or load_public(config.appliance_public_key)
        self._decisions: queue.SimpleQueue[Decision] = queue.SimpleQueue()
        self._handheld: queue.SimpleQueue[HandheldEvent] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._closed = False
        self._ctx = zmq.Context()
        self._dealer = self._ctx.socket(zmq.DEALER)
        self._sub = self._ctx.socket(zmq.SUB)
        try:
            sockets.curve_client(self._dealer, keypair, server)
            self._dealer.setsockopt(zmq.IMMEDIATE, 1)
            self._dealer.connect(sockets.endpoint(config.appliance_host, config.alerts_port))
            sockets.curve_client(self._sub, keypair, server)
            self._sub.setsockopt(zmq.CONFLATE, 1)
            self._sub.setsockopt(zmq.SUBSCRIBE, b"")
            self._sub.connect(sockets.endpoint(config.appliance_host, config.preview_port))
        except zmq.ZMQError as exc:
            self._teardown()
            raise LinkError(f"cannot connect to the appliance at {config.appliance_host}: {exc}") from exc
        self._thread = threading.Thread(target=self._run, name="viewer-link", daemon=True)
        self._thread.start()

    def decide(self, alert_id: str, outcome: str, note: str = "", *, decision_id: str | None = None) -> Decision:
        """Queue the operator's decision; it is resent until the appliance acknowledges it.

        `decision_id` is given when a decision sent on an earlier link is sent again (the appliance records it
        once); a new decision gets a fresh id.
        """
        decision = Decision(decision_id=decision_id or str(uuid.uuid4()), alert_id=alert_id, outcome=outcome,
                            note=note, t_wall=self.clock.time())
        self._decisions.put(decision)
        return decision

    def send_handheld_event(self, event: HandheldEvent) -> None:
        """Queue a handheld event (kept by the caller first); resent until the appliance acknowledges it."""
        self._handheld.put(event)

    @property
    def is_link_up(self) -> bool:
        return self.failure is None and self.protocol.is_up(self.clock.monotonic())

    def close(self) -> None:
        """Stop the worker and release the sockets; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            log.error("viewer link worker did not stop within 5 s")
        self._teardown()

    def __enter__(self) -> ViewerLink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _teardown(self) -> None:
        self._dealer.close(linger=0)
        self._sub.close(linger=0)
        self._ctx.term()

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._dealer, zmq.POLLIN)
        poller.register(self._sub, zmq.POLLIN)
        while not self._stop.is_set():
            ready = dict(poller.poll(sockets.POLL_MS))
            now = self.clock.monotonic()
            if self._dealer in ready and not self._receive():
                if self.when_link is not None and self.protocol.link_change(float("inf")) is False:
                    self.when_link(False)
                return
            if self._sub in ready:
                self._receive_preview()
            while True:
                try:
                    self.protocol.decide(self._decisions.get_nowait())
                except queue.Empty:
                    break
            while True:
                try:
                    self.protocol.handheld_events.add(self._handheld.get_nowait())
                except queue.Empty:
                    break
            for message in self.protocol.due(now, self.clock.time()):
                self._send(message)
            change = self.protocol.link_change(now)
            if change is not None:
                log.info("link to the appliance is %s", "up" if change else "down")
                if self.when_link is not None:
                    self.when_link(change)

    def _receive(self) -> bool:
        """Handle every waiting message; False when the viewer could not keep an alert (the worker stops)."""
        for _ in range(1000):
            try:
                frames = self._dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            events = self.protocol.handle(frames, self.clock.monotonic())
            for alert in events.delivered:
                try:
                    self.when_alert(alert)
                except Exception as exc:
                    # Not acknowledging keeps the alert in the appliance's outbox; stopping keeps this
                    # instance from treating it as delivered. The viewer restarts from what it holds.
                    log.exception("the viewer could not keep alert %s (seq %d); link stopped",
                                  alert.alert_id, alert.seq)
                    self.failure = exc
                    return False
            for reply in events.replies:
                self._send(reply)
            for ack in events.decision_acks:
                if not ack.accepted:
                    log.warning("appliance refused decision %s: %s", ack.decision_id, ack.reason)
                if self.when_decision_ack is not None:
                    self.when_decision_ack(ack)
            for hack in events.handheld_acks:
                if not hack.accepted:
                    log.warning("appliance refused handheld event %s: %s", hack.event_id, hack.reason)
                if self.when_handheld_ack is not None:
                    self.when_handheld_ack(hack)
            if events.health is not None and self.when_health is not None:
                self.when_health(events.health)
        return True

    def _receive_preview(self) -> None:
        try:
            blob = self._sub.recv(zmq.NOBLOCK)
        except zmq.Again:
            return
        preview = self.protocol.handle_preview(blob)
        if preview is not None and self.when_preview is not None:
            self.when_preview(preview)

    def _send(self, message: Message) -> None:
        try:
            self._dealer.send_multipart(message.encode(), zmq.NOBLOCK)
        except zmq.Again:
            if not isinstance(message, Heartbeat):
                log.debug("no connection to the appliance; %s not sent (resent later)", message.TYPE)
