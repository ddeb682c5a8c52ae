"""Issue 13, findings 3 and 5: a page of another origin cannot record the operator's decision, and the
handhelds' listener caps every body before reading it, locks out repeated wrong pairing codes per client
and writes a flood of refusals as a few journal lines."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from viewer_fixtures import appliance_row, console_for, wait_for

from firmware.bench import browser
from firmware.bench.loopback import LoopbackAppliance, make_keys
from firmware.hardware.clock import FakeClock
from firmware.throttle import Lockout, ThrottledLog
from firmware.viewer.console import Console
from firmware.viewer.handheld.app import create_handheld_app
from firmware.viewer.handheld.server import HandheldServer
from firmware.viewer.handheld.service import Handhelds
from firmware.viewer.handheld.store import HandheldStore
from firmware.viewer.handheld.tls import ensure_certificate
from firmware.viewer.server import ViewerServer
from firmware.viewer.store import ViewerStore


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[tuple[LoopbackAppliance, Console]]:
    keys = make_keys(tmp_path / "keys")
    appliance = LoopbackAppliance(tmp_path, keys)
    appliance.set_health()
    console = console_for(appliance, keys, tmp_path / "laptop" / "viewer.sqlite3")
    try:
        with console:
            yield appliance, console
    finally:
        appliance.close()
        console.store.close()


def _evil_site(target: str) -> ThreadingHTTPServer:
    """A web site on another loopback port whose page tries every way a page can POST a decision."""
    page = f"""<!doctype html><title>evil</title><script>
    const url = {target!r};
    const body = JSON.stringify({{outcome: "false_alert", note: "forged"}});
    window.tries = Promise.allSettled([
      fetch(url, {{method: "POST", mode: "no-cors", body}}),
      fetch(url, {{method: "POST", mode: "no-cors", headers: {{"Content-Type": "text/plain"}}, body}}),
      fetch(url, {{method: "POST", headers: {{"Content-Type": "application/json"}}, body}}),
      new Promise(done => {{ const f = document.createElement("form"); f.method = "POST"; f.action = url;
        f.enctype = "text/plain"; const i = document.createElement("input"); i.name = '{{"outcome":"false_alert","x":"';
        i.value = '"}}'; f.appendChild(i); document.body.appendChild(f);
        const frame = document.createElement("iframe"); frame.name = "sink"; document.body.appendChild(frame);
        f.target = "sink"; frame.onload = done; f.submit(); }}),
    ]).then(r => window.done = r.map(x => x.status));
    </script>""".encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.slow
def test_a_page_of_another_origin_cannot_record_a_decision(feed: tuple[LoopbackAppliance, Console]) -> None:
    """Issue 13, finding 5, in a real browser: the page of another loopback port POSTs the decision with
    no-cors text/plain, a CORS JSON fetch and a text/plain form; the alert stays pending on both sides."""
    appliance, console = feed
    alert = appliance.raise_alert(1)
    assert wait_for(lambda: console.store.last_seq() == 1)
    with ViewerServer(console) as viewer:
        evil = _evil_site(f"{viewer.url}api/alerts/{alert.id}/decision")
        try:
            with browser.chromium_page() as page:
                page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
                page.wait_for_function("window.done !== undefined", timeout=10_000)
                time.sleep(0.5)
        finally:
            evil.shutdown()
            evil.server_close()
    assert console.store.alert(alert.id)["state"] == "pending"  # type: ignore[index]
    assert appliance_row(appliance, alert.id) == ("pending", None, None)


@pytest.fixture
def handhelds(tmp_path: Path) -> Iterator[Handhelds]:
    alerts = ViewerStore(tmp_path / "viewer.sqlite3")
    store = HandheldStore(tmp_path / "handhelds.sqlite3")
    yield Handhelds(store, alerts, send=lambda e: None, clock=FakeClock(wall=time.time()))
    alerts.close()
    store.close()


def _raw_https(port: int, request: bytes, then: bytes = b"", timeout: float = 5.0) -> bytes:
    """Send `request` (headers, maybe a first part of the body) over TLS, then `then`; the reply's bytes."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(request)
        if then:
            try:
                s.sendall(then)
            except OSError:
                pass  # the server may close once it refused
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def test_listener_refuses_a_huge_body_before_reading_it(handhelds: Handhelds, tmp_path: Path) -> None:
    """Issue 13, finding 3: two 1.2 GB POSTs to /api/pair took the viewer process to 3.9 GB. Declared:
    413 with the headers alone; chunked: 413 after the first 16 KiB, the rest never read."""
    cert = ensure_certificate(tmp_path / "tls", "127.0.0.1")
    with HandheldServer(handhelds, cert, "127.0.0.1", 0) as server:
        t0 = time.monotonic()
        reply = _raw_https(server.port, b"POST /api/pair HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                        b"Content-Length: 1200000000\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 413") and time.monotonic() - t0 < 2.0
        chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
        reply = _raw_https(server.port, b"POST /api/pair HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                        b"Transfer-Encoding: chunked\r\n\r\n", chunk * 4)
        assert reply.startswith(b"HTTP/1.1 413")


def test_wrong_pairing_codes_lock_the_client_out(handhelds: Handhelds) -> None:
    """Issue 13, finding 3: 1,000 wrong tokens in 2 s met no lockout. Five wrong codes lock that address out
    for five minutes (even the right code is refused meanwhile); another address is not affected."""
    now = [0.0]
    app = create_handheld_app(handhelds, Lockout(max_failures=5, window_s=60, lockout_s=300,
                                                 monotonic=lambda: now[0]))
    attacker = TestClient(app, base_url="https://127.0.0.1:8443", client=("10.0.0.66", 5000))
    officer = TestClient(app, base_url="https://127.0.0.1:8443", client=("10.0.0.7", 5000))
    for n in range(5):
        assert attacker.post("/api/pair", json={"token": f"wrong-code-{n:04d}"}).status_code == 403
    offer = handhelds.offer_pairing("PC 1")
    locked = attacker.post("/api/pair", json={"token": offer.token})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) == 300
    now[0] = 301.0
    assert attacker.post("/api/pair", json={"token": offer.token}).status_code == 200
    second = handhelds.offer_pairing("PC 2")
    for n in range(4):
        attacker.post("/api/pair", json={"token": f"wrong-code-{n:04d}"})
    assert officer.post("/api/pair", json={"token": second.token}).status_code == 200


def test_a_flood_of_wrong_codes_is_a_few_warnings(handhelds: Handhelds, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 13, finding 3: 1,000 wrong tokens gave 1,000 warning lines. Now: a handful per minute."""
    app = create_handheld_app(handhelds, Lockout(max_failures=10**6))
    client = TestClient(app, base_url="https://127.0.0.1:8443")
    with caplog.at_level(logging.DEBUG):
        for n in range(300):
            assert client.post("/api/pair", json={"token": f"wrong-code-{n:04d}"}).status_code == 403
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 1 <= len(warnings) <= 3, [r.getMessage() for r in warnings]


def test_throttled_log_counts_what_it_held_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    throttled = ThrottledLog(logging.getLogger("t"), interval_s=60, monotonic=lambda: now[0])
    with caplog.at_level(logging.WARNING):
        assert throttled.warning("k", "refused %s", "a")
        assert not any(throttled.warning("k", "refused %s", "b") for _ in range(9))
        now[0] = 61
        assert throttled.warning("k", "refused %s", "c")
    assert [r.getMessage() for r in caplog.records] == ["refused a", "refused c (9 more like this in the last 60 s)"]
