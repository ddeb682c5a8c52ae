"""The viewer's web app over a real link: WebSocket events, decisions, images, restarts, link down."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from viewer_fixtures import appliance_row, console_for, wait_for

from firmware.bench.loopback import LoopbackAppliance, LoopbackKeys, make_keys
from firmware.hardware.clock import SystemClock
from firmware.store.alerts import record_decision
from firmware.viewer.app import create_app
from firmware.viewer.console import Console
from firmware.viewer.store import ViewerStore


@pytest.fixture
def keys(tmp_path: Path) -> LoopbackKeys:
    return make_keys(tmp_path / "keys")


@pytest.fixture
def appliance(tmp_path: Path, keys: LoopbackKeys) -> Iterator[LoopbackAppliance]:
    with LoopbackAppliance(tmp_path, keys) as appliance:
        appliance.set_health()
        yield appliance


@pytest.fixture
def console(tmp_path: Path, appliance: LoopbackAppliance, keys: LoopbackKeys) -> Iterator[Console]:
    console = console_for(appliance, keys, tmp_path / "laptop" / "viewer.sqlite3")
    with console:
        yield console
    console.store.close()


WS_URL = "ws://127.0.0.1/ws"


def client_for(console: Console) -> TestClient:
    """A test client that names the host, and its own origin, the way the viewer's page in a browser does."""
    return TestClient(create_app(console), base_url="http://127.0.0.1", headers={"Origin": "http://127.0.0.1"})


def receive_until(ws: Any, kind: str, predicate: Any = lambda m: True, limit: int = 200) -> dict[str, Any]:
    """The next event of type `kind` that satisfies `predicate` (heartbeat-paced status events are skipped)."""
    for _ in range(limit):
        message = ws.receive_json()
        if message["type"] == kind and predicate(message):
            return message
    raise AssertionError(f"no {kind} event in {limit} messages")


def test_a_page_gets_the_snapshot_then_live_alerts_and_decides_one(
        console: Console, appliance: LoopbackAppliance) -> None:
    first = appliance.raise_alert(1, camera="cam1", category="missing")
    assert wait_for(lambda: console.store.last_seq() == 1)
    with client_for(console) as client, client.websocket_connect(WS_URL) as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and [a["id"] for a in hello["alerts"]] == [first.id]
        assert hello["alerts"][0]["has_probe"] and hello["outcomes"]["false_alert"] == "False alert"
        second = appliance.raise_alert(2)
        event = receive_until(ws, "alert")
        assert (event["alert"]["id"], event["alert"]["state"]) == (second.id, "pending")
        assert event["counts"]["alerts"] == 2 and event["counts"]["pending"] == 2
        ws.send_json({"type": "decide", "alert_id": second.id, "outcome": "false_alert", "note": "a poster"})
        receive_until(ws, "decision", lambda m: m["accepted"] is None and m["alert"]["state"] == "sending")
        done = receive_until(ws, "decision", lambda m: m["accepted"] is True)
        assert done["alert"]["state"] == "decided" and done["counts"]["false_alert"] == 1
        ws.send_json({"type": "decide", "alert_id": second.id, "outcome": "confirmed_stopped"})
        refused = receive_until(ws, "refused")
        assert "already decided" in refused["reason"]
        assert client.get(f"/api/alerts/{first.id}/probe.jpg").content == first.probe_jpeg
        image = client.get(f"/api/alerts/{first.id}/reference.jpg")
        assert image.headers["cache-control"] == "no-store" and image.content == first.reference_jpeg
        assert client.get(f"/api/alerts/{first.id}/other.jpg").status_code == 404
        assert [a["id"] for a in client.get("/api/alerts?category=missing").json()["alerts"]] == [first.id]
        assert [a["id"] for a in client.get("/api/alerts?outcome=false_alert").json()["alerts"]] == [second.id]
        assert client.get("/api/alerts?outcome=maybe").status_code == 400
    assert appliance_row(appliance, second.id) == ("decided", "false_alert", "a poster")
    assert appliance_row(appliance, first.id) == ("pending", None, None)


def test_a_decision_the_appliance_refuses_shows_its_reason(console: Console,
                                                            appliance: LoopbackAppliance) -> None:
    alert = appliance.raise_alert(1)
    assert wait_for(lambda: console.store.last_seq() == 1)
    # Someone decided it at the van meanwhile: the appliance refuses the laptop's decision.
    record_decision(appliance.db, alert.id, "confirmed_stopped", clock=SystemClock(), actor="cli:test")
    with client_for(console) as client:
        response = client.post(f"/api/alerts/{alert.id}/decision", json={"outcome": "false_alert"})
        assert response.status_code == 200 and response.json()["alert"]["state"] == "sending"
        assert wait_for(lambda: (console.store.alert(alert.id) or {}).get("refusal") is not None)
        shown = client.get("/api/state").json()["alerts"][0]
    assert shown["state"] == "pending" and "already decided as confirmed_stopped" in shown["refusal"]
    assert appliance_row(appliance, alert.id)[1] == "confirmed_stopped"


def test_bad_decisions_and_foreign_pages_are_refused(console: Console, appliance: LoopbackAppliance) -> None:
    alert = appliance.raise_alert(1)
    assert wait_for(lambda: console.store.last_seq() == 1)
    with client_for(console) as client:
        bad = client.post(f"/api/alerts/{alert.id}/decision", json={"outcome": "arrested"})
        assert bad.status_code == 409 and "unknown decision" in bad.json()["error"]
        assert client.post(f"/api/alerts/{alert.id}/decision", content=b"{",
                           headers={"Content-Type": "application/json"}).status_code == 400
        with pytest.raises(WebSocketDisconnect), client.websocket_connect(
                WS_URL, headers={"origin": "http://evil.example"}) as ws:
            ws.receive_json()
        # DNS rebinding: a foreign name resolving to 127.0.0.1 gets nothing
        assert client.get("/api/alerts", headers={"host": "evil.example"}).status_code == 400
        assert client.get(f"/api/alerts/{alert.id}/probe.jpg", headers={"host": "evil.example:8080"}).status_code \
            == 400
    assert appliance_row(appliance, alert.id) == ("pending", None, None)
    assert console.store.alert(alert.id)["state"] == "pending"  # type: ignore[index]


def test_the_page_serves_only_local_files(console: Console) -> None:
    with client_for(console) as client:
        page = client.get("/").text
        assert "/static/viewer.js" in page and "/static/viewer.css" in page
        for asset in ("/static/viewer.js", "/static/viewer.css"):
            assert client.get(asset).status_code == 200
    assert "http://" not in page and "https://" not in page
    assert client.get("/api/preview.jpg").status_code == 404  # no preview frame received yet


def test_a_restarted_viewer_keeps_its_history_and_gets_what_it_missed_once(
        tmp_path: Path, appliance: LoopbackAppliance, keys: LoopbackKeys) -> None:
    path = tmp_path / "laptop" / "viewer.sqlite3"
    first = console_for(appliance, keys, path)
    with first:
        made = [appliance.raise_alert(n) for n in range(1, 6)]
        assert wait_for(lambda: first.store.last_seq() == 5)
        first.decide(made[0].id, "confirmed_not_stopped", "walked off")
        assert wait_for(lambda: first.store.alert(made[0].id)["state"] == "decided")  # type: ignore[index]
    first.store.close()
    made += [appliance.raise_alert(n) for n in range(6, 9)]  # while the laptop is off
    second = console_for(appliance, keys, path)
    with second:
        assert wait_for(lambda: second.store.last_seq() == 8)
        assert wait_for(lambda: appliance.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0)
        time.sleep(0.3)  # room for any resent duplicate to arrive
        shown = second.store.alerts()
    second.store.close()
    assert [a["id"] for a in shown] == [a.id for a in reversed(made)]
    assert shown[-1]["state"] == "decided" and shown[-1]["note"] == "walked off"


@pytest.mark.slow
def test_the_link_shows_down_within_3_s_of_the_appliance_going_away(
        tmp_path: Path, keys: LoopbackKeys) -> None:
    """With the link's default timings (heartbeats 0.5 s, timeout 2.5 s), not the fast test ones."""
    appliance = LoopbackAppliance(tmp_path, keys)
    config = dataclasses.replace(appliance.viewer_config, heartbeat_interval=0.5, link_timeout=2.5)
    console = Console(ViewerStore(tmp_path / "v.sqlite3"), config, keypair=keys.laptop,
                      appliance_public=keys.appliance.public)
    try:
        with console, client_for(console) as client, client.websocket_connect(WS_URL) as ws:
            assert ws.receive_json()["type"] == "hello"
            receive_until(ws, "status", lambda m: m["link_up"])
            appliance.close()
            gone = time.monotonic()
            receive_until(ws, "status", lambda m: not m["link_up"])
            assert time.monotonic() - gone < 3.0
            assert client.get("/api/state").json()["link_up"] is False
    finally:
        appliance.close()
        console.store.close()


@pytest.mark.slow
def test_an_alert_the_laptop_could_not_keep_arrives_after_the_link_reopens(
        console: Console, appliance: LoopbackAppliance, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed write (e.g. a full laptop disk) stops the link unacknowledged; the console reopens it."""
    from firmware.errors import StorageError

    keep = console.store.keep_alert
    failures = []

    def full_disk_once(alert: Any, **kwargs: Any) -> bool:
        if not failures:
            failures.append(alert.alert_id)
            raise StorageError("database or disk is full")
        return keep(alert, **kwargs)

    monkeypatch.setattr(console.store, "keep_alert", full_disk_once)
    alert = appliance.raise_alert(1)
    assert wait_for(lambda: console.store.last_seq() == 1, timeout=10)
    assert failures == [alert.id] and [a["id"] for a in console.store.alerts()] == [alert.id]
    assert wait_for(lambda: console.status()["link_up"], timeout=5)


def _decisions_audited(appliance: LoopbackAppliance, alert_id: str) -> int:
    return appliance.db.execute("SELECT COUNT(*) FROM audit WHERE action = 'decision' AND "
                                "json_extract(details, '$.alert_id') = ?", [alert_id]).fetchone()[0]


def test_a_decision_made_while_the_appliance_was_down_reaches_it_after_both_restart(
        tmp_path: Path, keys: LoopbackKeys) -> None:
    """Regression: an unacknowledged decision used to go back to pending at the viewer's next start, so the
    operator had to decide again; now it is sent again under its own id and recorded once."""
    path = tmp_path / "laptop" / "viewer.sqlite3"
    first_appliance = LoopbackAppliance(tmp_path, keys)
    first = console_for(first_appliance, keys, path)
    with first:
        alert = first_appliance.raise_alert(1)
        assert wait_for(lambda: first.store.last_seq() == 1)
        first_appliance.close()  # the van's side goes away before the operator decides
        first.decide(alert.id, "false_alert", "not the same man")
    first.store.close()
    with LoopbackAppliance(tmp_path, keys) as appliance:
        second = console_for(appliance, keys, path)
        with second:
            assert wait_for(lambda: second.store.alert(alert.id)["state"] == "decided")  # type: ignore[index]
        second.store.close()
        assert appliance_row(appliance, alert.id) == ("decided", "false_alert", "not the same man")
        assert _decisions_audited(appliance, alert.id) == 1


def test_a_decision_whose_ack_was_lost_is_recorded_once_when_sent_again(
        tmp_path: Path, keys: LoopbackKeys, monkeypatch: pytest.MonkeyPatch) -> None:
    """The appliance recorded the decision but the laptop stopped before the ack: the resend is answered as
    recorded (same decision id), not refused as a second decision, and nothing is written twice."""
    path = tmp_path / "laptop" / "viewer.sqlite3"
    with LoopbackAppliance(tmp_path, keys) as appliance:
        first = console_for(appliance, keys, path)
        monkeypatch.setattr(first, "_on_decision_ack", lambda ack: None)  # the ack never lands
        with first:
            alert = appliance.raise_alert(1)
            assert wait_for(lambda: first.store.last_seq() == 1)
            first.decide(alert.id, "confirmed_stopped", "")
            assert wait_for(lambda: appliance_row(appliance, alert.id)[0] == "decided")
            assert first.store.alert(alert.id)["state"] == "sending"  # type: ignore[index]
        first.store.close()
    with LoopbackAppliance(tmp_path, keys) as appliance:  # restarted too: its memory of answers is gone
        second = console_for(appliance, keys, path)
        with second:
            assert wait_for(lambda: second.store.alert(alert.id)["state"] == "decided")  # type: ignore[index]
            assert second.store.alert(alert.id)["refusal"] is None  # type: ignore[index]
        second.store.close()
        assert _decisions_audited(appliance, alert.id) == 1


def test_the_newest_watchlist_import_result_reaches_the_page(console: Console,
                                                             appliance: LoopbackAppliance) -> None:
    """Health version 2 over the real link: a refused stick's code and short reason reach every open page."""
    with client_for(console) as client, client.websocket_connect(WS_URL) as ws:
        hello = ws.receive_json()
        assert hello["health"] is None or hello["health"]["import_outcome"] is None
        appliance.set_health(import_time=time.time(), import_outcome="refused", import_code="untrusted_signer",
                             import_reason="signature by an untrusted key")
        status = receive_until(ws, "status", lambda m: m["health"] and m["health"]["import_outcome"])
        assert {"import_outcome": "refused", "import_code": "untrusted_signer",
                "import_reason": "signature by an untrusted key"}.items() <= status["health"].items()
        assert client.get("/api/state").json()["health"]["import_code"] == "untrusted_signer"


@pytest.mark.parametrize("headers, body, status", [
    ({"Content-Type": "text/plain", "Origin": "http://127.0.0.1"}, b'{"outcome":"false_alert"}', 415),
    ({"Content-Type": "application/json", "Origin": "http://evil.example:8000"}, b'{"outcome":"false_alert"}',
     403),
    ({"Content-Type": "application/json"}, b'{"outcome":"false_alert"}', 403),
    ({"Content-Type": "application/json", "Origin": "http://127.0.0.1:9999"}, b'{"outcome":"false_alert"}', 403),
    ({"Content-Type": "application/json", "Origin": "http://127.0.0.1"},
     b'{"outcome":"false_alert","note":"' + b"x" * 20_000 + b'"}', 413),
])
def test_forged_or_oversized_decision_is_refused(console: Console, appliance: LoopbackAppliance,
                                                 headers: dict[str, str], body: bytes, status: int) -> None:
    """Issue 13, finding 5: a page of another origin recorded the operator's decision with a no-cors POST
    of text/plain. Every POST must now be JSON with this page's Origin, and its body at most 16 KiB."""
    alert = appliance.raise_alert(1)
    assert wait_for(lambda: console.store.last_seq() == 1)
    client = TestClient(create_app(console), base_url="http://127.0.0.1")
    response = client.post(f"/api/alerts/{alert.id}/decision", content=body, headers=headers)
    assert response.status_code == status
    assert console.store.alert(alert.id)["state"] == "pending"  # type: ignore[index]
    assert appliance_row(appliance, alert.id) == ("pending", None, None)


def test_chunked_body_without_a_length_is_capped(console: Console) -> None:
    """A body sent in chunks (no Content-Length) is counted as it arrives and refused past 16 KiB."""
    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024
    client = TestClient(create_app(console), base_url="http://127.0.0.1")
    response = client.post("/api/alerts/x/decision", content=chunks(),
                           headers={"Content-Type": "application/json", "Origin": "http://127.0.0.1"})
    assert response.status_code == 413
