"""A whole handheld rig on 127.0.0.1: loopback appliance, viewer console with handhelds, the operator's page
(with the handheld routes) and the handhelds' HTTPS listener; phones are headless Chromium contexts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viewer_fixtures import console_for, wait_for

from firmware.bench import browser
from firmware.bench.loopback import LoopbackAppliance, LoopbackKeys, make_keys
from firmware.viewer.console import Console
from firmware.viewer.handheld.operator import HandheldSite, operator_routes
from firmware.viewer.handheld.server import HandheldServer
from firmware.viewer.handheld.service import Handhelds
from firmware.viewer.handheld.store import HandheldStore
from firmware.viewer.handheld.tls import ensure_certificate
from firmware.viewer.server import ViewerServer

PHONE = {"width": 390, "height": 844}


@dataclass
class Rig:
    appliance: LoopbackAppliance
    console: Console
    handhelds: Handhelds
    site: HandheldSite
    operator_url: str
    keys: LoopbackKeys

    def confirmed_alert(self, n: int, outcome: str = "confirmed_stopped", **kwargs: Any) -> str:
        """Raise alert `n`, let the operator confirm it, and wait for the appliance's acknowledgement."""
        alert = self.appliance.raise_alert(n, **kwargs)
        assert wait_for(lambda: self.console.store.alert(alert.id) is not None, timeout=15)
        self.console.decide(alert.id, outcome)
        assert wait_for(lambda: (self.console.store.alert(alert.id) or {}).get("state") == "decided",
                        timeout=15)
        return alert.id

    def appliance_audit(self, action: str) -> list[dict[str, Any]]:
        import json

        rows = self.appliance.db.execute("SELECT details FROM audit WHERE action = ? ORDER BY seq",
                                         [action]).fetchall()
        return [json.loads(r[0]) for r in rows]


@contextmanager
def handheld_rig(tmp_path: Path, *, ttl_s: float = 1800.0) -> Iterator[Rig]:
    keys = make_keys(tmp_path / "keys")
    appliance = LoopbackAppliance(tmp_path, keys, health_interval=0.5)
    appliance.set_health()
    console = console_for(appliance, keys, tmp_path / "laptop" / "viewer.sqlite3")
    store = HandheldStore(tmp_path / "laptop" / "handhelds.sqlite3")
    handhelds = Handhelds(store, console.store, send=console.send_handheld_event, ttl_s=ttl_s, poll_s=0.5)
    handhelds.when_changed = console.publish
    console.handhelds = handhelds
    cert = ensure_certificate(tmp_path / "laptop", "127.0.0.1")
    try:
        with console, HandheldServer(handhelds, cert, "127.0.0.1", 0) as phones:
            site = HandheldSite(handhelds, f"https://127.0.0.1:{phones.port}", cert.fingerprint)
            with ViewerServer(console, extra_routes=operator_routes(site)) as operator:
                assert wait_for(lambda: handhelds.deployment is not None, timeout=15)
                yield Rig(appliance, console, handhelds, site, operator.url, keys)
    finally:
        appliance.close()
        console.store.close()
        store.close()


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright (never Playwright's own browser download); Playwright gives the
    browser a fresh temporary profile, and every context below is a separate, empty one."""
    from playwright.sync_api import sync_playwright

    if not browser.CHROMIUM.exists():
        raise browser.BrowserUnavailable(f"{browser.CHROMIUM} is missing (make deps installs it)")
    with sync_playwright() as pw:
        chrome = pw.chromium.launch(executable_path=str(browser.CHROMIUM), headless=True,
                                    args=list(browser.CHROMIUM_ARGS))
        try:
            yield chrome
        finally:
            chrome.close()


@contextmanager
def phone(chrome: Any) -> Iterator[Any]:
    """A phone-sized page in its own context that accepts the viewer's self-signed certificate."""
    context = chrome.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
                                 ignore_https_errors=True)
    try:
        yield context.new_page()
    finally:
        context.close()


@contextmanager
def operator_page(chrome: Any, url: str) -> Iterator[Any]:
    """The operator's laptop page (desktop size), in its own context."""
    context = chrome.new_context(viewport={"width": 1600, "height": 1000})
    try:
        page = context.new_page()
        page.goto(url)
        yield page
    finally:
        context.close()


def pair_phone(rig: Rig, page: Any, callsign: str) -> str:
    """Pair `page` with a one-time code offered for `callsign`; returns the device id."""
    offer = rig.handhelds.offer_pairing(callsign)
    page.goto(rig.site.pairing_url(offer.token))
    page.wait_for_function(f"document.getElementById('callsign').textContent === {callsign!r}")
    return next(d.id for d in rig.handhelds.store.devices(active_only=True) if d.callsign == callsign)
