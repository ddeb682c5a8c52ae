"""Handhelds without a browser: pairing codes and credentials, time limits, the laptop's audit chain, the
appliance's recording of handheld events, the certificate, and the link carrying the new message types."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from handheld_fixtures import handheld_rig
from link_fixtures import make_alert
from viewer_fixtures import wait_for

from firmware.bench.loopback import LoopbackAppliance
from firmware.errors import PolicyError
from firmware.hardware.clock import FakeClock
from firmware.link.messages import HandheldEvent, HandheldEventAck
from firmware.link.protocol import ApplianceProtocol
from firmware.store import audit, deployments
from firmware.store.alerts import NewAlert, record_alert, record_decision
from firmware.store.db import open_db
from firmware.store.handheld import record_handheld_event
from firmware.store.stats import read_stats
from firmware.viewer.handheld.service import Handhelds
from firmware.viewer.handheld.store import HandheldStore
from firmware.viewer.handheld.tls import ensure_certificate
from firmware.viewer.store import ViewerStore


@pytest.fixture
def rig(tmp_path: Path):
    clock = FakeClock(wall=time.time())
    alerts = ViewerStore(tmp_path / "viewer.sqlite3")
    store = HandheldStore(tmp_path / "handhelds.sqlite3")
    sent: list[HandheldEvent] = []
    handhelds = Handhelds(store, alerts, send=sent.append, clock=clock, ttl_s=1800, pairing_s=600)
    yield handhelds, clock, sent
    alerts.close()
    store.close()


def _confirmed(handhelds: Handhelds, seq: int, outcome: str = "confirmed_stopped") -> str:
    alert = make_alert(seq)
    handhelds.alerts.keep_alert(alert, received=time.time(), deployment="1: Test Street")
    if outcome != "pending":
        decision_id = str(uuid.uuid4())
        handhelds.alerts.decision_sent(alert.alert_id, decision_id, outcome, "")
        handhelds.alerts.decision_done(alert.alert_id, decision_id, True, "", time.time())
    return alert.alert_id


def test_a_pairing_code_works_once_and_lapses(rig) -> None:
    handhelds, clock, sent = rig
    offer = handhelds.offer_pairing("  PC   123 ")
    assert offer.callsign == "PC 123"
    device, credential = handhelds.pair(offer.token)
    known = handhelds.authenticate(credential)
    assert known is not None and (known.id, known.callsign) == (device.id, "PC 123")
    assert handhelds.authenticate("not-" + credential) is None
    with pytest.raises(PolicyError, match="already used"):
        handhelds.pair(offer.token)
    late = handhelds.offer_pairing("PC 7")
    clock.advance(601)
    with pytest.raises(PolicyError, match="expired"):
        handhelds.pair(late.token)
    raw = handhelds.store.path.read_bytes() + Path(str(handhelds.store.path) + "-wal").read_bytes()
    assert credential.encode() not in raw and offer.token.encode() not in raw  # only hashes are stored
    assert [e.kind for e in sent] == ["paired"]
    with pytest.raises(PolicyError, match="callsign"):
        handhelds.offer_pairing("   ")


def test_only_confirmed_alerts_go_out_and_only_to_the_chosen_handheld(rig) -> None:
    handhelds, clock, sent = rig
    a, ca = handhelds.pair(handhelds.offer_pairing("A").token)
    b, _ = handhelds.pair(handhelds.offer_pairing("B").token)
    pending = _confirmed(handhelds, 1, "pending")
    false = _confirmed(handhelds, 2, "false_alert")
    for alert_id in (pending, false):
        with pytest.raises(PolicyError, match="not confirmed"):
            handhelds.dispatch(alert_id, None)
    confirmed = _confirmed(handhelds, 3)
    assert handhelds.dispatch(confirmed, [a.id]) == ["A"]
    assert [i["alert_id"] for i in handhelds.feed(a)["alerts"]] == [confirmed]
    assert handhelds.feed(b)["open"] == [] and handhelds.image(b, confirmed, "probe") is None
    cursor = handhelds.feed(a)["cursor"]
    assert handhelds.feed(a, cursor)["alerts"] == [] and handhelds.feed(a, cursor)["open"] == [confirmed]
    assert handhelds.image(a, confirmed, "probe")
    # the set time passes: details and images are gone
    clock.advance(1801)
    assert handhelds.feed(a)["open"] == [] and handhelds.image(a, confirmed, "probe") is None
    with pytest.raises(PolicyError, match="no longer open"):
        handhelds.answer(a, confirmed, "engaged")
    assert handhelds.authenticate(ca) is not None


def test_outcome_closes_everywhere_and_revocation_ends_the_credential(rig) -> None:
    handhelds, clock, sent = rig
    a, ca = handhelds.pair(handhelds.offer_pairing("A").token)
    b, cb = handhelds.pair(handhelds.offer_pairing("B").token)
    alert_id = _confirmed(handhelds, 1)
    handhelds.dispatch(alert_id, None)
    handhelds.answer(a, alert_id, "advised")
    assert handhelds.feed(a)["open"] == [] and handhelds.feed(b)["open"] == []
    second = _confirmed(handhelds, 2)
    handhelds.dispatch(second, [b.id])
    handhelds.revoke(b.id)
    assert handhelds.authenticate(cb) is None
    with pytest.raises(PolicyError, match="no paired handheld"):
        handhelds.dispatch(second, [b.id])
    assert [e.kind for e in sent] == ["paired", "paired", "dispatched", "dispatched", "advised", "dispatched",
                                      "revoked"]
    result = audit.verify(handhelds.store.db)
    assert result.ok and result.rows == len(sent)  # every event is in the laptop's own chained audit log


def test_deployment_end_clears_every_handheld(rig) -> None:
    handhelds, clock, sent = rig
    a, _ = handhelds.pair(handhelds.offer_pairing("A").token)
    handhelds.deployment_changed("1: Test Street")
    handhelds.dispatch(_confirmed(handhelds, 1), None)
    assert handhelds.deployment_changed("1: Test Street") == 0
    assert handhelds.deployment_changed(None) == 1
    assert handhelds.feed(a)["open"] == []


def test_unacknowledged_events_are_sent_again(rig) -> None:
    """Events made while the link is down stay in the store until acknowledged, through restarts."""
    handhelds, clock, sent = rig
    handhelds.pair(handhelds.offer_pairing("A").token)
    sent.clear()
    assert handhelds.resend_unacked() == 1 and sent[0].kind == "paired"
    handhelds.on_ack(HandheldEventAck(event_id=sent[0].event_id, accepted=True, reason=""))
    assert handhelds.resend_unacked() == 0 and handhelds.store.unacked_events() == []


def _appliance(tmp_path: Path):
    clock = FakeClock(wall=time.time())
    db = open_db(tmp_path / "appliance.sqlite3")
    dep = deployments.start(db, authority="T-1", officer="PC T", location="Test", threshold=0.6, clock=clock,
                            actor="test")
    ids = []
    for n in range(2):
        alert = NewAlert(deployment_id=dep.id, t_wall=clock.time(), t_mono=1.0, camera="cam0", track_id=n,
                         subject_id=f"S{n}", subject_name="Test", score=0.8, category="wanted", reason="test",
                         probe_jpeg=None, reference_jpeg=None)
        record_alert(db, alert, actor="test")
        ids.append(alert.id)
    return db, dep, clock, ids


def _event(kind: str, alert_id: str | None) -> HandheldEvent:
    return HandheldEvent(event_id=str(uuid.uuid4()), kind=kind, device_id=str(uuid.uuid4()), callsign="PC 1",
                         alert_id=alert_id, t_wall=time.time())


def test_appliance_records_handheld_events_once_and_only_on_confirmed_alerts(tmp_path: Path) -> None:
    db, dep, clock, (confirmed, pending) = _appliance(tmp_path)
    record_decision(db, confirmed, "confirmed_stopped", clock=clock, actor="operator:test")
    with pytest.raises(PolicyError, match="not confirmed"):
        record_handheld_event(db, _event("engaged", pending), clock=clock, actor="viewer:test")
    before = audit.head(db)
    engaged = _event("engaged", confirmed)
    assert record_handheld_event(db, engaged, clock=clock, actor="viewer:test") is True
    assert record_handheld_event(db, engaged, clock=clock, actor="viewer:test") is False  # a repeat
    assert record_handheld_event(db, _event("no_action", confirmed), clock=clock, actor="viewer:test")
    with pytest.raises(PolicyError, match="already closed"):
        record_handheld_event(db, _event("arrested", confirmed), clock=clock, actor="viewer:test")
    assert record_handheld_event(db, _event("paired", None), clock=clock, actor="viewer:test")
    stats = read_stats(db, dep.id)
    assert (stats["field_engaged"], stats["field_no_action"], stats["field_arrested"]) == (1, 1, 0)
    row = db.execute("SELECT field_status, field_outcome FROM alerts WHERE id = ?", [confirmed]).fetchone()
    assert tuple(row) == ("engaged", "no_action")
    assert audit.head(db)[0] == before[0] + 3 and audit.verify(db).ok
    db.close()


def test_appliance_protocol_answers_a_repeated_handheld_event_from_memory() -> None:
    protocol = ApplianceProtocol()
    event = _event("paired", None)
    first = protocol.handle(b"peer", event.encode(), 1.0)
    assert first.handheld_events == [event]
    ack = protocol.handheld_event_done(event, True)
    again = protocol.handle(b"peer", event.encode(), 1.1)
    assert again.handheld_events == [] and again.replies == [ack]


def test_certificate_is_made_once_per_address_with_a_private_key(tmp_path: Path) -> None:
    first = ensure_certificate(tmp_path, "192.168.50.2")
    assert os.stat(first.key_file).st_mode & 0o077 == 0
    assert ensure_certificate(tmp_path, "192.168.50.2") == first
    moved = ensure_certificate(tmp_path, "van-laptop.local")
    assert moved.fingerprint != first.fingerprint


def test_a_pairing_made_while_the_appliance_is_away_reaches_its_audit_log_later(tmp_path: Path) -> None:
    """Over the real link: the event is kept on the laptop, resent, and recorded once when the appliance is
    back on the same ports (a restarted appliance, or the van network returning)."""
    with handheld_rig(tmp_path / "rig") as rig:
        ports = (rig.appliance.link.alerts_port, rig.appliance.link.preview_port)
        rig.appliance.link.close()
        assert wait_for(lambda: not rig.console._link_up, timeout=5)
        device, _ = rig.handhelds.pair(rig.handhelds.offer_pairing("PC Late").token)
        assert [e.kind for e in rig.handhelds.store.unacked_events()] == ["paired"]
        back = LoopbackAppliance(tmp_path / "rig", rig.keys, alerts_port=ports[0], preview_port=ports[1],
                                 health_interval=0.5)
        try:
            assert wait_for(lambda: rig.handhelds.store.unacked_events() == [], timeout=10)
            rows = back.db.execute("SELECT details FROM audit WHERE action = 'handheld_paired'").fetchall()
            assert len(rows) == 1 and device.id in rows[0][0]
        finally:
            back.close()


def test_an_alert_closed_by_an_outcome_is_not_sent_again(rig) -> None:
    handhelds, clock, sent = rig
    a, _ = handhelds.pair(handhelds.offer_pairing("A").token)
    alert_id = _confirmed(handhelds, 1)
    handhelds.dispatch(alert_id, None)
    clock.advance(600)
    assert handhelds.dispatch(alert_id, None) == ["A"]  # sent again: its time starts again
    assert handhelds.feed(a)["alerts"][0]["expires"] == clock.time() + 1800
    handhelds.answer(a, alert_id, "no_action")
    with pytest.raises(PolicyError, match="already closed"):
        handhelds.dispatch(alert_id, [a.id])
    assert handhelds.feed(a)["open"] == []
