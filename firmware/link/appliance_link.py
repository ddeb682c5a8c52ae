"""The appliance's end of the link: a CURVE server that admits only paired laptop keys (ZAP, ironhouse).

Channels (why these socket types):
- alerts, port `alerts_port`, ROUTER: every viewer connection has a routing id, so the appliance knows who
  acknowledged what and sends alerts only to the newest live viewer; ROUTER_MANDATORY turns a send to a
  vanished viewer into an error instead of a silent drop. Carries alerts, acks, decisions and their acks,
  heartbeats both ways, and health.
- preview, port `preview_port`, PUB: the newest pixelated frame for every subscriber; the viewer's SUB is
  conflated, so a slow laptop only ever sees the latest frame and alerts never queue behind previews.

One worker thread owns the alerts socket and the outbox, opened on that thread by the `open_outbox` the
caller hands in (`store.outbox.opener`: its own connection through `open_db`), so this package does not
depend on the store; `publish_preview` may be called from any thread (the PUB socket is guarded by a lock).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Protocol

import zmq
from zmq.auth.thread import ThreadAuthenticator

from firmware.config import LinkConfig
from firmware.errors import LfrError, LinkError, StorageError
from firmware.hardware.clock import Clock, SystemClock
from firmware.link import sockets
from firmware.link.keys import AllowedKeys, KeyPair, fingerprint, load_keypair, secret_key_source
from firmware.link.messages import Alert, Decision, HandheldEvent, Health, Message, Preview, pack
from firmware.link.protocol import ApplianceProtocol

log = logging.getLogger(__name__)

OUTBOX_CHECK_S = 0.1
MAX_UNRECORDED = 256
"""Alerts the van could not write (disk full) kept in memory for the viewer; beyond it none more is taken."""
"""Seconds between outbox scans when nobody called `notify`."""


class OutboxStore(Protocol):
    """What the link's worker needs of the outbox (`firmware.store.outbox.Outbox`), on its own thread."""

    def pending(self, limit: int) -> list[tuple[str, int]]: ...

    def load(self, alert_id: str) -> Alert | None: ...

    def mark_sent(self, alert_ids: Iterable[str], when: float) -> None: ...

    def acknowledge(self, alert_ids: Iterable[str], when: float) -> int: ...

    def close(self) -> None: ...


class ApplianceLink:
    """Sends outbox alerts until acknowledged, takes decisions back, heartbeats, health and preview.

    `when_decision(decision)` runs on the link's thread for each new operator decision; it records the
    decision (alert row, audit, stats) and returns, or raises an LfrError to refuse it (the viewer is told
    why). It must be idempotent by `decision_id`: after a restart a repeated decision may arrive again.
    `when_handheld_event(event)` does the same for handheld events (idempotent by `event_id`); without it
    they are refused, so the viewer keeps them until an appliance that records them answers.
    """

    def __init__(self, config: LinkConfig, open_outbox: Callable[[], OutboxStore], *,
                 when_decision: Callable[[Decision], None],
                 when_link: Callable[[bool], None] | None = None,
                 when_handheld_event: Callable[[HandheldEvent], None] | None = None,
                 keypair: KeyPair | None = None, allowed: AllowedKeys | None = None,
                 clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.open_outbox = open_outbox
        self.when_decision = when_decision
        self.when_link = when_link
        self.when_handheld_event = when_handheld_event
        self.protocol = ApplianceProtocol(sockets.timings(config))
        keypair = keypair or load_keypair(secret_key_source(config.secret_key))
        self.allowed = allowed or AllowedKeys(config.allowed_keys)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._preview_lock = threading.Lock()  # guards the sockets other threads use: PUB and the waker
        self._health: Health | None = None
        self._last_scan = self._last_health = 0.0
        self._unsendable: set[str] = set()  # outbox rows that cannot be decoded (logged once each)
        self._unrecorded: dict[str, Alert] = {}  # alerts the van could not write: sent from memory until acked
        self._unrecorded_lock = threading.Lock()
        self._closed = False
        self._ctx = zmq.Context()
        self._auth = ThreadAuthenticator(self._ctx, log=logging.getLogger(__name__ + ".zap"))
        self._router = self._ctx.socket(zmq.ROUTER)
        self._pub = self._ctx.socket(zmq.PUB)
        # `notify` wakes the worker out of its poll at once (an Event alone waited up to POLL_MS: 50 ms).
        self._wake_rx = self._ctx.socket(zmq.PAIR)
        self._wake_tx = self._ctx.socket(zmq.PAIR)
        try:
            wake_address = f"inproc://appliance-link-wake-{id(self)}"
            self._wake_rx.bind(wake_address)
            self._wake_tx.connect(wake_address)
            self._auth.start()
            self._auth.configure_curve_callback(sockets.ZAP_DOMAIN.decode(),
                                                credentials_provider=self.allowed)
            self._router.setsockopt(zmq.ROUTER_MANDATORY, 1)
            sockets.curve_server(self._router, keypair)
            self._router.bind(sockets.endpoint(config.bind_address, config.alerts_port))
            sockets.curve_server(self._pub, keypair)
            self._pub.setsockopt(zmq.SNDHWM, 2)
            self._pub.bind(sockets.endpoint(config.bind_address, config.preview_port))
        except zmq.ZMQError as exc:
            self._teardown()
            if exc.errno == zmq.EADDRINUSE:
                raise LinkError(f"cannot listen on {config.bind_address} ports {config.alerts_port}/"
                                f"{config.preview_port}: another appliance is running (stop it first: `systemctl "
                                "stop lfr-appliance`, or Ctrl-C the other `lfr run` or `lfr demo`; or give [link] "
                                "other ports)") from exc
            raise LinkError(f"cannot listen on {config.bind_address} ports {config.alerts_port}/"
                            f"{config.preview_port}: {exc}") from exc
        self.alerts_port = sockets.bound_port(self._router)
        self.preview_port = sockets.bound_port(self._pub)
        log.info("link listening on %s ports %d (alerts) and %d (preview), appliance key %s",
                 config.bind_address, self.alerts_port, self.preview_port, keypair.fingerprint)
        self._thread = threading.Thread(target=self._run, name="appliance-link", daemon=True)
        self._thread.start()

    # -- called from other threads -------------------------------------------------------------------

    def notify(self) -> None:
        """A new alert is in the outbox: send it now rather than at the next scan."""
        self._wake.set()
        with self._preview_lock:
            if self._closed:
                return
            try:
                self._wake_tx.send(b"", zmq.NOBLOCK)
            except zmq.Again:
                pass  # wake-ups already waiting: the worker is about to scan anyway

    def keep_unrecorded(self, alert: Alert) -> bool:
        """Send `alert` (marked not persisted) from memory until the viewer acknowledges it: the van could not
        write it. False when MAX_UNRECORDED are held already (the caller must stop taking new faces)."""
        with self._unrecorded_lock:
            if len(self._unrecorded) >= MAX_UNRECORDED:
                return False
            self._unrecorded[alert.alert_id] = alert
        self.notify()
        return True

    def can_take_alerts(self) -> bool:
        """True while an alert the van cannot write would still reach the operator: the viewer is connected
        and the memory for such alerts is not full."""
        with self._unrecorded_lock:
            room = len(self._unrecorded) < MAX_UNRECORDED
        return room and self.is_link_up

    @property
    def unrecorded_count(self) -> int:
        """Alerts held in memory only, not yet acknowledged by the viewer."""
        with self._unrecorded_lock:
            return len(self._unrecorded)

    def set_health(self, health: Health) -> None:
        """The newest health state, sent to the viewer every `health_interval` seconds."""
        self._health = health

    def publish_preview(self, preview: Preview) -> None:
        """Offer one preview frame (already pixelated); dropped when no viewer keeps up."""
        with self._preview_lock:
            if self._closed:
                return
            try:
                self._pub.send(pack(preview.encode()), zmq.NOBLOCK)
            except zmq.Again:
                pass  # a slow subscriber: previews may drop, the next frame replaces this one

    @property
    def is_link_up(self) -> bool:
        return self.protocol.is_up(self.clock.monotonic())

    def close(self) -> None:
        """Stop the worker and release the sockets; safe to call twice."""
        if self._closed:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            log.error("appliance link worker did not stop within 5 s")
        with self._preview_lock:
            self._closed = True
            self._teardown()

    def __enter__(self) -> ApplianceLink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _teardown(self) -> None:
        self._router.close(linger=0)
        self._pub.close(linger=0)
        self._wake_tx.close(linger=0)
        self._wake_rx.close(linger=0)
        if self._auth.is_alive():
            self._auth.stop()
        self._ctx.term()

    # -- the worker ------------------------------------------------------------------------------------

    def _run(self) -> None:
        outbox: OutboxStore | None = None
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._wake_rx, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                try:
                    if outbox is None:
                        outbox = self.open_outbox()
                    self._step(outbox, poller)
                except (sqlite3.OperationalError, StorageError) as exc:
                    # e.g. "database is locked" for longer than the busy timeout: nothing is lost (an
                    # unrecorded ack only means a resend, dropped by the viewer), so wait and go on.
                    log.warning("outbox unavailable (%s); retrying", exc)
                    self._stop.wait(0.5)
        finally:
            if outbox is not None:
                outbox.close()

    def _step(self, db: OutboxStore, poller: zmq.Poller) -> None:
        """One turn of the worker: receive, heartbeat, health, (re)send alerts, report link changes."""
        ready = dict(poller.poll(sockets.POLL_MS))
        now = self.clock.monotonic()
        if self._wake_rx in ready:
            self._drain_wake()
        acked = self._receive(db) if self._router in ready else 0
        live, beat = self.protocol.heartbeat_due(now, self.clock.time())
        if beat is not None:
            for peer in live:
                self._send(peer, beat)
        if self._health is not None and self.protocol.active is not None and \
                now - self._last_health >= self.config.health_interval:
            self._last_health = now
            self._send(self.protocol.active, self._health)
        if acked or self._wake.is_set() or now - self._last_scan >= OUTBOX_CHECK_S:
            self._wake.clear()
            self._last_scan = now
            self._send_alerts(db, now)
        change = self.protocol.link_change(now)
        if change is not None:
            log.info("link to the viewer is %s", "up" if change else "down")
            if self.when_link is not None:
                self.when_link(change)

    def _drain_wake(self) -> None:
        """Empty the wake-up socket; `_wake` (the Event) says what to do."""
        while True:
            try:
                self._wake_rx.recv(zmq.NOBLOCK)
            except zmq.Again:
                return

    def _receive(self, db: OutboxStore) -> int:
        """Handle every waiting message; returns how many outbox rows acknowledgements removed."""
        acked: list[str] = []
        for _ in range(1000):
            try:
                parts = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            peer, frames = parts[0].bytes, [p.bytes for p in parts[1:]]
            events = self.protocol.handle(peer, frames, self.clock.monotonic(), _laptop_key(parts[-1]))
            if events.new_peer:
                self._log_peer(parts[-1])
            acked.extend(a.alert_id for a in events.acked)
            for reply in events.replies:
                self._send(peer, reply)
            for decision in events.decisions:
                self._decide(peer, decision)
            for event in events.handheld_events:
                self._record_handheld(peer, event)
        with self._unrecorded_lock:
            stored = [a for a in acked if self._unrecorded.pop(a, None) is None]
        if not stored:
            return len(acked)
        try:
            return db.acknowledge(stored, self.clock.time())
        except (sqlite3.OperationalError, StorageError) as exc:
            # a full disk cannot even delete: the rows are resent and dropped by the viewer as duplicates,
            # and the alerts in memory keep flowing
            log.warning("acknowledged alerts not removed from the outbox (%s); they will be resent", exc)
            return 0

    def _log_peer(self, frame: zmq.Frame) -> None:
        try:
            key = str(frame.get("User-Id")).encode()
            log.info("viewer connected with laptop key %s", fingerprint(key))
        except (zmq.ZMQError, ValueError) as exc:
            log.info("viewer connected (key not known: %s)", exc)

    def _decide(self, peer: bytes, decision: Decision) -> None:
        self._record(peer, lambda: self.when_decision(decision),
                     lambda ok, why: self.protocol.decision_done(decision, ok, why),
                     f"decision {decision.decision_id} on alert {decision.alert_id}")

    def _record_handheld(self, peer: bytes, event: HandheldEvent) -> None:
        if self.when_handheld_event is None:
            self._send(peer, self.protocol.handheld_event_done(event, False, "this appliance does not record "
                                                                             "handheld events"))
            return
        recorder = self.when_handheld_event
        self._record(peer, lambda: recorder(event),
                     lambda ok, why: self.protocol.handheld_event_done(event, ok, why),
                     f"handheld event {event.event_id} ({event.kind})")

    def _record(self, peer: bytes, record: Callable[[], None], done: Callable[[bool, str], Message],
                what: str) -> None:
        """Run `record` and acknowledge: accepted, or refused with an LfrError's message. Any other failure
        is logged and not acknowledged, so the viewer sends it again."""
        try:
            record()
        except LfrError as exc:
            log.warning("%s refused: %s", what, exc)
            self._send(peer, done(False, str(exc)))
            return
        except Exception:
            log.exception("recording %s failed; the viewer will send it again", what)
            return
        self._send(peer, done(True, ""))

    def _send_alerts(self, db: OutboxStore, now: float) -> None:
        unsendable = self._unsendable
        if not self.protocol.is_up(now) or self.protocol.active is None:
            return
        with self._unrecorded_lock:
            memory = dict(self._unrecorded)
        pending = [p for p in db.pending(self.config.window + len(unsendable))
                   if p[0] not in unsendable and p[0] not in memory]
        pending = sorted(pending + [(a.alert_id, a.seq) for a in memory.values()], key=lambda p: p[1])
        sent: list[str] = []
        for alert_id, prev_seq in self.protocol.due_alerts(pending, now):
            alert = memory.get(alert_id) or db.load(alert_id)
            if alert is None:
                unsendable.add(alert_id)
                continue
            if not self._send(self.protocol.active, alert.with_prev(prev_seq)):
                break
            self.protocol.sender.mark_sent(alert_id, now)
            if alert_id not in memory:
                sent.append(alert_id)
        try:
            db.mark_sent(sent, self.clock.time())
        except (sqlite3.OperationalError, StorageError) as exc:
            log.debug("send times not recorded (%s)", exc)

    def _send(self, peer: bytes | None, message: Message) -> bool:
        """Send to one viewer connection; False when it is gone (forgotten) or not keeping up."""
        if peer is None:
            return False
        try:
            self._router.send_multipart([peer, *message.encode()], zmq.NOBLOCK)
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self.protocol.peer_gone(peer)
            return False
        return True


def _laptop_key(frame: zmq.Frame) -> bytes | None:
    """The CURVE public key (Z85) the ZAP handshake authenticated for the connection `frame` came on."""
    try:
        user = frame.get("User-Id")
    except (zmq.ZMQError, ValueError):
        return None
    return str(user).encode() if user else None
