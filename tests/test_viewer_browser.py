"""The operator's page in headless Chromium (Debian's package, driven by Playwright) over a real link.

The appliance side is a real store with an open deployment and a real ApplianceLink; the decision made by a
key press must end up in the appliance's alert row and its audit log. The screenshot of the alert screen
in docs/ is made by tests/test_viewer_layout.py (at 1366x768).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from viewer_fixtures import appliance_row, console_for, wait_for

from firmware.bench import browser
from firmware.bench.loopback import LoopbackAppliance, make_keys
from firmware.link.messages import Preview
from firmware.store import audit
from firmware.viewer.sample_images import pixelated_scene_jpeg
from firmware.viewer.server import ViewerServer

pytestmark = pytest.mark.slow  # runs for more than a few seconds: `make test`, not `make test-fast`


def _preview_feed(appliance: LoopbackAppliance, stop: threading.Event) -> None:
    frame = Preview(camera="cam0", t_wall=time.time(), width=640, height=360,
                    jpeg=pixelated_scene_jpeg("cam0 live (test scene)"))
    while not stop.wait(0.25):
        appliance.link.publish_preview(frame)


@pytest.fixture
def feed(tmp_path: Path) -> Iterator[tuple[LoopbackAppliance, object]]:
    keys = make_keys(tmp_path / "keys")
    appliance = LoopbackAppliance(tmp_path, keys)
    appliance.set_health()
    stop = threading.Event()
    previews = threading.Thread(target=_preview_feed, args=(appliance, stop), daemon=True)
    previews.start()
    console = console_for(appliance, keys, tmp_path / "laptop" / "viewer.sqlite3")
    try:
        with console:
            yield appliance, console
    finally:
        stop.set()
        previews.join(timeout=2)
        appliance.close()
        console.store.close()


def test_operator_sees_a_new_alert_and_marks_it_false_from_the_keyboard(feed: tuple, tmp_path: Path) -> None:
    appliance, console = feed
    history = [appliance.raise_alert(1, camera="cam1", category="missing/vulnerable", score=0.71,
                                     name="Test Subject Bravo", reason="Missing person report (test)"),
               appliance.raise_alert(2, camera="cam0", score=0.64, name="Test Subject Charlie")]
    assert wait_for(lambda: console.store.last_seq() == 2)
    console.decide(history[0].id, "confirmed_not_stopped", "not found at the scene")
    console.decide(history[1].id, "false_alert", "")
    assert wait_for(lambda: console.store.counts()["pending"] == 0)

    with ViewerServer(console) as server, browser.chromium_page() as page:
        asked: list[str] = []
        page.on("request", lambda r: asked.append(r.url))
        page.goto(server.url)
        page.wait_for_selector("#link.up", timeout=10_000)
        page.mouse.click(5, 990)  # the operator's first click allows the page's sound
        alert = appliance.raise_alert(3, camera="cam0", category="wanted", score=0.87,
                                      name="Test Subject Alpha", reason="Warrant: failing to appear (test)")
        page.wait_for_selector(f"#queue li.pending[data-id='{alert.id}']", timeout=10_000)
        assert page.inner_text("#subject").startswith("Test Subject Alpha")
        assert page.inner_text("#score") == "0.87"
        assert not page.is_hidden("#banner")
        assert page.get_attribute("body", "data-beeps") == "1"
        for which in ("probe", "reference"):  # the two images are shown at the same size
            page.wait_for_function(f"document.getElementById('{which}').naturalWidth > 0")
        sizes = [page.eval_on_selector(f"#{w}", "e => [e.clientWidth, e.clientHeight]")
                 for w in ("probe", "reference")]
        assert sizes[0] == sizes[1] and sizes[0][0] >= 300
        page.wait_for_function("document.getElementById('preview').naturalWidth > 0", timeout=10_000)
        page.wait_for_selector("#history tr", timeout=5_000)

        page.keyboard.press("f")
        page.wait_for_selector(f"#queue li.decided[data-id='{alert.id}']", timeout=10_000)
        assert wait_for(lambda: appliance_row(appliance, alert.id) == ("decided", "false_alert", None))
        rows = [json.loads(r[0]) for r in appliance.db.execute(
            "SELECT details FROM audit WHERE action = 'decision'")]
        assert {"alert_id": alert.id, "decision": "false_alert"}.items() <= rows[-1].items()
        assert audit.verify(appliance.db).ok

        page.select_option("#f-outcome", "false_alert")
        page.wait_for_function("document.querySelectorAll('#history tr').length === 2")
        assert sorted(page.eval_on_selector_all("#history tr", "rs => rs.map(r => r.dataset.id)")) == \
            sorted([history[1].id, alert.id])

        # quiet: without handhelds the page never asks for them (it polled a 404 every 1.5 s), and it has an icon
        assert not [u for u in asked if "/api/handhelds" in u]
        icon = page.evaluate("fetch('/favicon.ico').then(r => [r.status, r.headers.get('content-type')])")
        assert icon == [200, "image/svg+xml"]
        appliance.link.close()  # the van goes away: the status bar says so within 3 s
        page.wait_for_selector("#link.down", timeout=3_000)


def test_the_status_bar_shows_the_newest_watchlist_import(feed: tuple) -> None:
    """A refused stick shows in amber with its short reason and time; an accepted one with its counts."""
    appliance, console = feed
    at = time.time()
    with ViewerServer(console) as server, browser.chromium_page() as page:
        page.goto(server.url)
        page.wait_for_selector("#link.up", timeout=10_000)
        assert page.is_hidden("#import")  # no import result yet
        appliance.set_health(import_time=at, import_outcome="refused", import_code="untrusted_signer",
                             import_reason="signature by an untrusted key")
        page.wait_for_selector("#import.refused", timeout=10_000)
        hhmm = time.strftime("%H:%M", time.localtime(at))
        assert page.inner_text("#import") == f"Watchlist: refused — signature by an untrusted key ({hhmm})"
        assert page.eval_on_selector("#import", "e => getComputedStyle(e).backgroundColor") == "rgb(245, 165, 36)"
        appliance.set_health(import_time=at, import_outcome="accepted", import_accepted=182, import_rejected=18,
                             import_deployment_ref="OP-1")
        page.wait_for_selector("#import:not(.refused)", timeout=10_000)
        assert page.inner_text("#import") == f"Watchlist OP-1: 182 accepted, 18 rejected ({hhmm})"
