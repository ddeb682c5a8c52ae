"""The link's logic with no I/O: what to send, what to resend, what to deliver, whether the link is up.

The socket wrappers (`appliance_link`, `viewer_link`) feed received frames and the clock in and send what
comes out; everything that decides anything lives here, so it is tested without sockets.

Delivery works like this. The appliance keeps every alert in its outbox until acknowledged and sends the
lowest `window` of them in seq (capture) order, each resent every `resend_interval` s and all at once when a
new viewer connection appears. Each alert carries `prev_seq`, the seq of the next lower alert still in the
outbox when it was sent (None when none). Every alert below an alert's seq that is not in the outbox was
acknowledged, and the viewer acknowledges only what it has delivered, so the viewer may deliver an alert once
`prev_seq` is None or already delivered; it holds others (unacknowledged, hence resent with a fresh
`prev_seq`) until then. Anything at or below the last delivered seq is a duplicate: dropped, acknowledged
again. Times here are monotonic seconds.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from firmware.errors import MessageError
from firmware.link.messages import (
    Ack,
    Alert,
    Decision,
    DecisionAck,
    HandheldEvent,
    HandheldEventAck,
    Health,
    Heartbeat,
    Message,
    Preview,
    decode,
    unpack,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timings:
    """Link timing, in seconds (and alerts for `window`); see `LinkConfig` for the configured values."""

    heartbeat_interval: float = 0.5
    link_timeout: float = 2.5
    resend_interval: float = 2.0
    window: int = 64


class RejectLog:
    """Counts rejected messages by kind; the first of each kind is a warning, later ones debug lines."""

    def __init__(self, side: str) -> None:
        self.side = side
        self.counts: dict[str, int] = {}

    def reject(self, exc: MessageError) -> None:
        seen = self.counts.get(exc.kind, 0)
        self.counts[exc.kind] = seen + 1
        if seen == 0:
            log.warning("%s rejected a message: %s (further %r rejections are logged at debug level)",
                        self.side, exc, exc.kind)
        else:
            log.debug("%s rejected a message: %s", self.side, exc)


class Liveness:
    """Up while a message arrived within `timeout` s; `change` reports each up/down transition once."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.last_seen: float | None = None
        self._reported = False

    def beat(self, now: float) -> None:
        self.last_seen = now

    def is_up(self, now: float) -> bool:
        return self.last_seen is not None and now - self.last_seen < self.timeout

    def change(self, now: float) -> bool | None:
        """The new state if it differs from the last one reported, else None."""
        up = self.is_up(now)
        if up == self._reported:
            return None
        self._reported = up
        return up


class AlertSender:
    """Appliance side: which outbox alerts to (re)send now, lowest seq first, at most `window` in flight."""

    def __init__(self, resend_interval: float, window: int) -> None:
        self.resend_interval = resend_interval
        self.window = window
        self._sent: dict[str, float] = {}

    def reset(self) -> None:
        """Forget what was sent: a new viewer connection gets every pending alert at once."""
        self._sent.clear()

    def due(self, pending: Sequence[tuple[str, int]], now: float) -> list[tuple[str, int | None]]:
        """Of `pending` (alert_id, seq) pairs, the outbox's lowest seqs, those to send now, in seq order,
        each with the `prev_seq` it must carry."""
        window = sorted(pending, key=lambda p: p[1])[:self.window]
        keep = {alert_id for alert_id, _ in window}
        self._sent = {k: t for k, t in self._sent.items() if k in keep}
        out: list[tuple[str, int | None]] = []
        prev = None
        for alert_id, seq in window:
            sent = self._sent.get(alert_id)
            if sent is None or now - sent >= self.resend_interval:
                out.append((alert_id, prev))
            prev = seq
        return out

    def mark_sent(self, alert_id: str, now: float) -> None:
        self._sent[alert_id] = now

    def on_ack(self, ack: Ack) -> None:
        self._sent.pop(ack.alert_id, None)


class AlertReceiver:
    """Viewer side: delivers each alert once, in seq order; seeded with what the viewer already holds."""

    MAX_HELD = 256
    MAX_SEEN = 10_000

    def __init__(self, last_seq: int = 0, seen: Iterable[str] = ()) -> None:
        self.last_seq = last_seq
        self._seen: OrderedDict[str, None] = OrderedDict((s, None) for s in seen)
        self.held: dict[int, Alert] = {}
        self.duplicates = 0

    def receive(self, alert: Alert) -> tuple[list[Alert], list[Ack]]:
        """(alerts now deliverable in order, acks to send); held alerts are not acknowledged yet."""
        if alert.alert_id in self._seen or alert.seq <= self.last_seq:
            self.duplicates += 1
            return [], [Ack(alert_id=alert.alert_id, seq=alert.seq)]
        self.held[alert.seq] = alert
        if len(self.held) > self.MAX_HELD:
            del self.held[max(self.held)]
        delivered: list[Alert] = []
        while self.held:
            lowest = self.held[min(self.held)]
            if lowest.prev_seq is not None and lowest.prev_seq > self.last_seq:
                break
            del self.held[lowest.seq]
            self.last_seq = lowest.seq
            self._seen[lowest.alert_id] = None
            if len(self._seen) > self.MAX_SEEN:
                self._seen.popitem(last=False)
            delivered.append(lowest)
        return delivered, [Ack(alert_id=a.alert_id, seq=a.seq) for a in delivered]

    def snapshot(self) -> tuple[int, tuple[str, ...], tuple[int, ...]]:
        return self.last_seq, tuple(self._seen), tuple(sorted(self.held))


class DecisionSender:
    """Viewer side: the operator's decisions, resent until the appliance acknowledges each one."""

    def __init__(self, resend_interval: float) -> None:
        self.resend_interval = resend_interval
        self.pending: OrderedDict[str, Decision] = OrderedDict()
        self._sent: dict[str, float] = {}

    def add(self, decision: Decision) -> None:
        self.pending[decision.decision_id] = decision

    def reset(self) -> None:
        self._sent.clear()

    def due(self, now: float) -> list[Decision]:
        out = [d for k, d in self.pending.items()
               if k not in self._sent or now - self._sent[k] >= self.resend_interval]
        for d in out:
            self._sent[d.decision_id] = now
        return out

    def on_ack(self, ack: DecisionAck) -> bool:
        """True when `ack` settles a pending decision (False for a repeated ack)."""
        self._sent.pop(ack.decision_id, None)
        return self.pending.pop(ack.decision_id, None) is not None


class HandheldEventSender:
    """Viewer side: handheld events (pairing, revocation, dispatch, officers' answers), resent until acked."""

    def __init__(self, resend_interval: float) -> None:
        self.resend_interval = resend_interval
        self.pending: OrderedDict[str, HandheldEvent] = OrderedDict()
        self._sent: dict[str, float] = {}

    def add(self, event: HandheldEvent) -> None:
        self.pending[event.event_id] = event

    def reset(self) -> None:
        self._sent.clear()

    def due(self, now: float) -> list[HandheldEvent]:
        out = [e for k, e in self.pending.items()
               if k not in self._sent or now - self._sent[k] >= self.resend_interval]
        for e in out:
            self._sent[e.event_id] = now
        return out

    def on_ack(self, ack: HandheldEventAck) -> bool:
        """True when `ack` settles a pending event (False for a repeated ack)."""
        self._sent.pop(ack.event_id, None)
        return self.pending.pop(ack.event_id, None) is not None


@dataclass
class ApplianceEvents:
    """What one received message asks of the appliance: outbox rows to drop, decisions to record, replies."""

    acked: list[Ack] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    handheld_events: list[HandheldEvent] = field(default_factory=list)
    replies: list[Message] = field(default_factory=list)
    new_peer: bool = False
    refused: bool = False
    """The message came from a second connection with a laptop key whose first connection is alive."""


class ApplianceProtocol:
    """Appliance side of the link: peers by ZeroMQ routing id, the active viewer, alerts, decisions."""

    MAX_DECISIONS = 4096

    def __init__(self, timings: Timings = Timings()) -> None:
        self.timings = timings
        self.sender = AlertSender(timings.resend_interval, timings.window)
        self.peers: dict[bytes, float] = {}
        self.active: bytes | None = None
        self.rejects = RejectLog("appliance")
        self._answered: OrderedDict[str, DecisionAck] = OrderedDict()
        self._answered_events: OrderedDict[str, HandheldEventAck] = OrderedDict()
        self._liveness = Liveness(timings.link_timeout)
        self._last_heartbeat: float | None = None
        self.peer_keys: dict[bytes, bytes] = {}
        """The laptop key (CURVE public key, Z85) of each peer connection, when the socket knows it."""
        self._refused: OrderedDict[bytes, None] = OrderedDict()

    def _holder(self, key: bytes, peer: bytes, now: float) -> bytes | None:
        """Another live connection (heard within link_timeout) with laptop key `key`, if any."""
        for other, other_key in self.peer_keys.items():
            if other != peer and other_key == key and now - self.peers.get(other, -1e18) < self.timings.link_timeout:
                return other
        return None

    def _refuse(self, peer: bytes, key: bytes) -> ApplianceEvents:
        """One viewer session per laptop key: a copied key (or a second viewer on the same laptop) must not
        take the alert stream over and acknowledge alerts the operator never sees. Logged once per connection."""
        if peer not in self._refused:
            shown = key.decode("ascii", "replace")[:8]
            log.warning("refused a second viewer connection with laptop key %s… while its first connection is "
                        "alive (a copied key, or a second viewer on the same laptop)", shown)
            self._refused[peer] = None
            while len(self._refused) > 256:
                self._refused.popitem(last=False)
        return ApplianceEvents(refused=True)

    def handle(self, peer: bytes, frames: Sequence[bytes], now: float, key: bytes | None = None) -> ApplianceEvents:
        """Decode and act on one message from `peer` (laptop key `key` when known); malformed or unexpected
        ones change nothing, and neither does any message of a second connection with a live key."""
        events = ApplianceEvents()
        try:
            message = decode(frames)
            if not isinstance(message, (Heartbeat, Ack, Decision, HandheldEvent)) or (
                    isinstance(message, Heartbeat) and message.role != "viewer"):
                raise MessageError("unexpected_type", f"the appliance does not take {message.TYPE} messages")
        except MessageError as exc:
            self.rejects.reject(exc)
            return events
        if key is not None:
            if self._holder(key, peer, now) is not None:
                return self._refuse(peer, key)
            self.peer_keys[peer] = key
        if peer not in self.peers or not self.is_up(now):
            # The newest connection gets the alerts; so does a remaining one when the active one went quiet.
            events.new_peer = peer not in self.peers
            if peer != self.active:
                self.active = peer
                self.sender.reset()
        self.peers[peer] = now
        if peer == self.active:
            self._liveness.beat(now)
        if isinstance(message, Ack):
            self.sender.on_ack(message)
            events.acked.append(message)
        elif isinstance(message, Decision):
            answered = self._answered.get(message.decision_id)
            if answered is not None:
                events.replies.append(answered)
            else:
                events.decisions.append(message)
        elif isinstance(message, HandheldEvent):
            answered_event = self._answered_events.get(message.event_id)
            if answered_event is not None:
                events.replies.append(answered_event)
            else:
                events.handheld_events.append(message)
        return events

    def handheld_event_done(self, event: HandheldEvent, accepted: bool, reason: str = "") -> HandheldEventAck:
        """The ack for a handheld event the appliance recorded (or refused), remembered for repeats."""
        ack = HandheldEventAck(event_id=event.event_id, accepted=accepted, reason=reason[:500])
        self._answered_events[event.event_id] = ack
        if len(self._answered_events) > self.MAX_DECISIONS:
            self._answered_events.popitem(last=False)
        return ack

    def decision_done(self, decision: Decision, accepted: bool, reason: str = "") -> DecisionAck:
        """The ack for a decision the appliance recorded (or refused), remembered for repeats."""
        ack = DecisionAck(decision_id=decision.decision_id, alert_id=decision.alert_id,
                          accepted=accepted, reason=reason[:500])
        self._answered[decision.decision_id] = ack
        if len(self._answered) > self.MAX_DECISIONS:
            self._answered.popitem(last=False)
        return ack

    def due_alerts(self, pending: Sequence[tuple[str, int]], now: float) -> list[tuple[str, int | None]]:
        """(alert_id, prev_seq) of the alerts to send to the active viewer now (none while none is live)."""
        if not self.is_up(now):
            return []
        return self.sender.due(pending, now)

    def heartbeat_due(self, now: float, t_wall: float) -> tuple[list[bytes], Heartbeat | None]:
        """Live peers to send a heartbeat to, and the heartbeat, once per heartbeat interval."""
        if self._last_heartbeat is not None and now - self._last_heartbeat < self.timings.heartbeat_interval:
            return [], None
        self._last_heartbeat = now
        horizon = now - 4 * self.timings.link_timeout
        self.peers = {p: t for p, t in self.peers.items() if t >= horizon}
        self.peer_keys = {p: k for p, k in self.peer_keys.items() if p in self.peers}
        live = [p for p, t in self.peers.items() if now - t < self.timings.link_timeout]
        return live, Heartbeat(role="appliance", t_wall=t_wall)

    def peer_gone(self, peer: bytes) -> None:
        """A send to `peer` failed because its connection is gone (a restarted viewer has a new id)."""
        self.peers.pop(peer, None)
        self.peer_keys.pop(peer, None)
        if peer == self.active:
            self.active = None
            self._liveness.last_seen = None

    def is_up(self, now: float) -> bool:
        return self.active is not None and self._liveness.is_up(now)

    def link_change(self, now: float) -> bool | None:
        return self._liveness.change(now)

    def snapshot(self) -> tuple[object, ...]:
        """Everything a message can change, for tests that check bad input changes nothing."""
        return (dict(self.peers), self.active, dict(self.sender._sent), tuple(self._answered),
                self._liveness.last_seen)


@dataclass
class ViewerEvents:
    """What one received message gives the viewer: alerts to show in order, replies, acks, health."""

    delivered: list[Alert] = field(default_factory=list)
    replies: list[Message] = field(default_factory=list)
    decision_acks: list[DecisionAck] = field(default_factory=list)
    handheld_acks: list[HandheldEventAck] = field(default_factory=list)
    health: Health | None = None


class ViewerProtocol:
    """Viewer side of the link: alert delivery, decisions going back, appliance liveness."""

    def __init__(self, timings: Timings = Timings(), last_seq: int = 0, seen: Iterable[str] = ()) -> None:
        self.timings = timings
        self.receiver = AlertReceiver(last_seq, seen)
        self.decisions = DecisionSender(timings.resend_interval)
        self.handheld_events = HandheldEventSender(timings.resend_interval)
        self.rejects = RejectLog("viewer")
        self.preview_rejects = RejectLog("viewer preview")
        self._liveness = Liveness(timings.link_timeout)
        self._last_heartbeat: float | None = None

    def handle(self, frames: Sequence[bytes], now: float) -> ViewerEvents:
        """Decode and act on one message from the appliance; malformed or unexpected ones change nothing."""
        events = ViewerEvents()
        try:
            message = decode(frames)
            if not isinstance(message, (Alert, Heartbeat, DecisionAck, HandheldEventAck, Health)) or (
                    isinstance(message, Heartbeat) and message.role != "appliance"):
                raise MessageError("unexpected_type", f"the viewer does not take {message.TYPE} messages")
        except MessageError as exc:
            self.rejects.reject(exc)
            return events
        if not self._liveness.is_up(now):
            self.decisions.reset()
            self.handheld_events.reset()
        self._liveness.beat(now)
        if isinstance(message, Alert):
            events.delivered, acks = self.receiver.receive(message)
            events.replies.extend(acks)
        elif isinstance(message, DecisionAck):
            if self.decisions.on_ack(message):
                events.decision_acks.append(message)
        elif isinstance(message, HandheldEventAck):
            if self.handheld_events.on_ack(message):
                events.handheld_acks.append(message)
        elif isinstance(message, Health):
            events.health = message
        return events

    def handle_preview(self, blob: bytes) -> Preview | None:
        """One packed preview message, or None (logged) when it is malformed."""
        try:
            message = decode(unpack(blob))
            if not isinstance(message, Preview):
                raise MessageError("unexpected_type", f"the preview stream does not carry {message.TYPE}")
        except MessageError as exc:
            self.preview_rejects.reject(exc)
            return None
        return message

    def decide(self, decision: Decision) -> None:
        self.decisions.add(decision)

    def due(self, now: float, t_wall: float) -> list[Message]:
        """Heartbeat (once per interval) and decisions to (re)send now."""
        out: list[Message] = []
        if self._last_heartbeat is None or now - self._last_heartbeat >= self.timings.heartbeat_interval:
            self._last_heartbeat = now
            out.append(Heartbeat(role="viewer", t_wall=t_wall))
        if self._liveness.is_up(now):
            out.extend(self.decisions.due(now))
            out.extend(self.handheld_events.due(now))
        return out

    def is_up(self, now: float) -> bool:
        return self._liveness.is_up(now)

    def link_change(self, now: float) -> bool | None:
        return self._liveness.change(now)

    def snapshot(self) -> tuple[object, ...]:
        """Everything a message can change, for tests that check bad input changes nothing."""
        return (self.receiver.snapshot(), tuple(self.decisions.pending), dict(self.decisions._sent),
                self._liveness.last_seen)
