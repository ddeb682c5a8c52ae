"""The link's state machine without sockets: resend until acknowledged, in order, once; liveness."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid

from link_fixtures import make_alert

from firmware.link.messages import Ack, Decision, DecisionAck, Health, Heartbeat
from firmware.link.protocol import AlertReceiver, AlertSender, ApplianceProtocol, Timings, ViewerProtocol

T = Timings(heartbeat_interval=0.5, link_timeout=2.5, resend_interval=2.0, window=4)
PEER, OTHER = b"\x00peer1", b"\x00peer2"
VIEWER_BEAT = Heartbeat(role="viewer", t_wall=1.0).encode()


def test_sender_resends_until_acknowledged() -> None:
    sender = AlertSender(resend_interval=2.0, window=10)
    pending = [("a", 1), ("b", 2)]
    assert sender.due(pending, 0.0) == [("a", None), ("b", 1)]
    sender.mark_sent("a", 0.0)
    sender.mark_sent("b", 0.0)
    assert sender.due(pending, 1.9) == []
    assert sender.due(pending, 2.0) == [("a", None), ("b", 1)]
    sender.mark_sent("a", 2.0)
    sender.mark_sent("b", 2.0)
    sender.on_ack(Ack(alert_id=str(uuid.uuid4()), seq=1))  # an ack for something else changes nothing
    assert sender.due([("b", 2)], 3.0) == []  # "a" acknowledged: gone from the outbox
    assert sender.due([("b", 2)], 4.0) == [("b", None)]  # nothing lower is pending any more


def test_sender_keeps_a_window_lowest_seq_first_and_resets_for_a_new_viewer() -> None:
    sender = AlertSender(resend_interval=2.0, window=3)
    pending = [(f"id{s}", s) for s in (9, 3, 5, 7)]
    assert sender.due(pending, 0.0) == [("id3", None), ("id5", 3), ("id7", 5)]
    for alert_id, _ in sender.due(pending, 0.0):
        sender.mark_sent(alert_id, 0.0)
    assert sender.due(pending, 0.5) == []
    sender.reset()
    assert [a for a, _ in sender.due(pending, 0.5)] == ["id3", "id5", "id7"]


def test_receiver_delivers_in_order_once_and_acks_duplicates() -> None:
    a1, a2, a3 = (make_alert(s) for s in (1, 2, 3))
    rx = AlertReceiver()
    out, acks = rx.receive(a3.with_prev(2))
    assert out == [] and acks == []  # 2 is still pending on the appliance: hold 3, do not ack it yet
    out, acks = rx.receive(a2.with_prev(1))
    assert out == [] and acks == []
    out, acks = rx.receive(a1)
    assert [a.seq for a in out] == [1, 2, 3]
    assert [a.alert_id for a in acks] == [a1.alert_id, a2.alert_id, a3.alert_id]
    out, acks = rx.receive(a2.with_prev(1))
    assert out == [] and [a.alert_id for a in acks] == [a2.alert_id]
    assert rx.duplicates == 1


def test_receiver_seeded_by_a_restarted_viewer_drops_what_it_holds() -> None:
    a4, a5 = make_alert(4), make_alert(5)
    rx = AlertReceiver(last_seq=4, seen=[a4.alert_id])
    out, acks = rx.receive(a4)
    assert out == [] and acks[0].alert_id == a4.alert_id
    out, _ = rx.receive(a5.with_prev(None))
    assert out == [a5.with_prev(None)]


def test_held_alert_resent_with_a_fresh_prev_unblocks() -> None:
    """An alert between two others was acknowledged elsewhere: its successor's resend says so."""
    a3 = make_alert(3)
    rx = AlertReceiver(last_seq=1)
    assert rx.receive(a3.with_prev(2)) == ([], [])
    out, _ = rx.receive(a3.with_prev(None))
    assert [a.seq for a in out] == [3]


def test_random_loss_duplication_and_reordering_still_delivers_everything_once_in_order() -> None:
    rng = random.Random(7)
    alerts = {a.alert_id: a for a in (make_alert(s) for s in range(1, 201))}
    outbox = {a.alert_id: a.seq for a in alerts.values()}
    appliance, viewer = ApplianceProtocol(Timings(resend_interval=1.0, window=16)), ViewerProtocol()
    delivered: list[int] = []
    now = 0.0
    while outbox and now < 500:
        now += 0.25
        appliance.handle(PEER, VIEWER_BEAT, now)
        due = appliance.due_alerts(sorted(outbox.items(), key=lambda p: p[1]), now)
        wire = []
        for alert_id, prev in due:
            appliance.sender.mark_sent(alert_id, now)
            wire.append(alerts[alert_id].with_prev(prev).encode())
        rng.shuffle(wire)
        wire += [w for w in wire if rng.random() < 0.2]  # duplicates
        for frames in wire:
            if rng.random() < 0.3:
                continue  # lost on the way
            events = viewer.handle(frames, now)
            delivered += [a.seq for a in events.delivered]
            for ack in events.replies:
                if rng.random() < 0.3:
                    continue  # ack lost: the alert comes again and is dropped as a duplicate
                for a in appliance.handle(PEER, ack.encode(), now).acked:
                    outbox.pop(a.alert_id, None)
    assert delivered == list(range(1, 201))
    assert not outbox


def test_appliance_sends_nothing_until_a_viewer_is_live_and_stops_when_it_goes_quiet() -> None:
    p = ApplianceProtocol(T)
    pending = [("a", 1)]
    assert p.due_alerts(pending, 0.0) == []
    events = p.handle(PEER, VIEWER_BEAT, 0.0)
    assert events.new_peer and p.link_change(0.0) is True
    assert p.due_alerts(pending, 0.1) == [("a", None)]
    assert p.is_up(2.4) and not p.is_up(2.5)
    assert p.link_change(2.6) is False and p.link_change(2.7) is None
    assert p.due_alerts(pending, 2.6) == []


def test_a_new_viewer_connection_gets_everything_again_at_once() -> None:
    p = ApplianceProtocol(T)
    p.handle(PEER, VIEWER_BEAT, 0.0)
    for alert_id, _ in p.due_alerts([("a", 1)], 0.0):
        p.sender.mark_sent(alert_id, 0.0)
    assert p.due_alerts([("a", 1)], 0.5) == []
    assert p.handle(OTHER, VIEWER_BEAT, 0.6).new_peer
    assert p.active == OTHER
    assert p.due_alerts([("a", 1)], 0.6) == [("a", None)]


def test_when_the_active_viewer_goes_another_live_one_takes_over() -> None:
    p = ApplianceProtocol(T)
    p.handle(PEER, VIEWER_BEAT, 0.0)
    p.handle(OTHER, VIEWER_BEAT, 0.1)
    assert p.active == OTHER
    p.handle(PEER, VIEWER_BEAT, 0.2)
    assert p.active == OTHER  # a known peer does not steal the link while the active one is live
    p.peer_gone(OTHER)
    assert not p.is_up(0.3)
    p.handle(PEER, VIEWER_BEAT, 0.4)
    assert p.active == PEER and p.is_up(0.4)
    assert p.due_alerts([("a", 1)], 0.4) == [("a", None)]


def test_heartbeats_go_to_live_peers_once_per_interval() -> None:
    p = ApplianceProtocol(T)
    p.handle(PEER, VIEWER_BEAT, 0.0)
    peers, beat = p.heartbeat_due(0.0, 100.0)
    assert peers == [PEER] and beat is not None and beat.role == "appliance"
    assert p.heartbeat_due(0.3, 100.0) == ([], None)
    p.handle(OTHER, VIEWER_BEAT, 0.4)
    assert sorted(p.heartbeat_due(0.5, 100.0)[0]) == sorted([PEER, OTHER])
    assert p.heartbeat_due(2.6, 100.0)[0] == [OTHER]  # PEER silent for 2.6 s


def test_viewer_link_shows_down_within_the_timeout_and_up_on_the_next_message() -> None:
    v = ViewerProtocol(T)
    assert v.link_change(0.0) is None  # starts down, nothing to report
    v.handle(Heartbeat(role="appliance", t_wall=1.0).encode(), 1.0)
    assert v.link_change(1.0) is True
    assert v.link_change(3.4) is None
    assert v.link_change(3.5) is False
    v.handle(Heartbeat(role="appliance", t_wall=1.0).encode(), 9.0)
    assert v.link_change(9.0) is True


def test_decisions_flow_back_until_acknowledged_and_repeats_are_answered_without_recording_twice() -> None:
    alert = make_alert(1)
    viewer, appliance = ViewerProtocol(T), ApplianceProtocol(T)
    viewer.handle(Heartbeat(role="appliance", t_wall=1.0).encode(), 0.0)
    decision = Decision(decision_id=str(uuid.uuid4()), alert_id=alert.alert_id, outcome="confirmed_stopped",
                        note="", t_wall=1.0)
    viewer.decide(decision)
    sent = [m for m in viewer.due(0.0, 1.0) if isinstance(m, Decision)]
    assert sent == [decision]
    assert [m for m in viewer.due(1.0, 1.0) if isinstance(m, Decision)] == []
    viewer.handle(Heartbeat(role="appliance", t_wall=1.0).encode(), 2.0)
    resent = [m for m in viewer.due(2.0, 1.0) if isinstance(m, Decision)]
    assert resent == [decision]
    first = appliance.handle(PEER, decision.encode(), 2.0)
    assert first.decisions == [decision]
    ack = appliance.decision_done(decision, accepted=True)
    again = appliance.handle(PEER, decision.encode(), 2.1)
    assert again.decisions == [] and again.replies == [ack]
    events = viewer.handle(ack.encode(), 2.2)
    assert events.decision_acks == [ack]
    assert viewer.handle(ack.encode(), 2.3).decision_acks == []
    viewer.handle(Heartbeat(role="appliance", t_wall=1.0).encode(), 5.0)
    assert [m for m in viewer.due(5.0, 1.0) if isinstance(m, Decision)] == []


def test_messages_in_the_wrong_direction_are_refused() -> None:
    appliance, viewer = ApplianceProtocol(T), ViewerProtocol(T)
    assert appliance.handle(PEER, make_alert(1).encode(), 0.0).acked == []
    assert appliance.peers == {}
    ack = DecisionAck(decision_id=str(uuid.uuid4()), alert_id=str(uuid.uuid4()), accepted=True, reason="")
    assert appliance.handle(PEER, ack.encode(), 0.0).replies == []
    viewer.handle(Heartbeat(role="viewer", t_wall=1.0).encode(), 0.0)
    assert not viewer.is_up(0.0)
    assert appliance.rejects.counts == {"unexpected_type": 2}
    assert viewer.rejects.counts == {"unexpected_type": 1}


def test_the_viewer_takes_health_from_an_appliance_of_either_version() -> None:
    """Link protocol 1.2: health version 2 adds the watchlist import result; a viewer still takes version 1
    from an appliance that was not updated (import fields unset) and shows version 2's fields."""
    new = Health(t_wall=1.7e9, cameras_fps={}, accelerator="cpu", temperature_c=None, disk_free_mb=None,
                 watchlist_size=0, watchlist_expires=None, deployment=None, import_time=1.7e9,
                 import_outcome="refused", import_code="signature_missing", import_reason="signature missing")
    later = {f.name for f in dataclasses.fields(Health) if f.metadata.get("since", 1) > 1}
    header = {k: v for k, v in json.loads(new.encode()[0]).items() if k not in later}
    viewer = ViewerProtocol(T)
    old = viewer.handle([json.dumps({**header, "v": 1}).encode()], 0.0).health
    assert old is not None and old.import_outcome is None and old.accelerator == "cpu"
    assert old.disk_low is None and old.op_list_size is None  # nor what later versions added
    got = viewer.handle(new.encode(), 0.1).health
    assert got == new and viewer.rejects.counts == {}


def test_one_session_per_laptop_key() -> None:
    """Issue 13, finding 6: a second live connection with the same laptop key is refused (nothing of its
    messages counts), another key may still connect, and the key is free again once the first went quiet."""
    p = ApplianceProtocol(T)
    p.handle(PEER, VIEWER_BEAT, 0.0, key=b"laptopA")
    copy = p.handle(OTHER, Ack(alert_id=str(uuid.uuid4()), seq=1).encode(), 0.5, key=b"laptopA")
    assert copy.refused and copy.acked == [] and p.active == PEER and OTHER not in p.peers
    assert p.handle(b"\x00peer3", VIEWER_BEAT, 0.6, key=b"laptopB").new_peer  # another laptop: as before
    later = p.handle(OTHER, VIEWER_BEAT, 3.1, key=b"laptopA")  # the first (PEER) is quiet since 0.0
    assert not later.refused and OTHER in p.peers
