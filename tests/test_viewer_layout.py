"""The operator's page at the laptop sizes vans carry (1280x720, 1366x768), in Debian's headless Chromium:
what must stay on screen, which keys may decide, the pairing QR code, and a deployment's end.

Regression tests for issue 14 (the operator's working day). Every image is a face-free stand-in.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from handheld_fixtures import Rig, chromium, handheld_rig, phone
from viewer_fixtures import wait_for

from firmware.errors import PolicyError
from firmware.hardware.clock import SystemClock
from firmware.link.messages import Preview
from firmware.store import deployments
from firmware.viewer.sample_images import pixelated_scene_jpeg

LAPTOPS = [(1280, 720), (1366, 768)]


def _page(chrome: Any, url: str, size: tuple[int, int]) -> Any:
    context = chrome.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#link.up", timeout=10_000)
    return page


def _inside(page: Any, selector: str, size: tuple[int, int]) -> bool:
    box = page.locator(selector).bounding_box()
    return (box is not None and box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size[0]
            and box["y"] + box["height"] <= size[1])


def _states(rig: Rig) -> dict[str, tuple[str, str | None]]:
    return {a["id"]: (a["state"], a["outcome"]) for a in rig.console.store.alerts()}


def _shots(tmp_path: Path) -> Path:
    shots = Path(os.environ.get("LFR_SCREENSHOT_DIR", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@pytest.mark.slow
@pytest.mark.parametrize("size", LAPTOPS, ids=lambda s: f"{s[0]}x{s[1]}")
def test_decision_buttons_stay_on_screen_and_typing_a_callsign_decides_nothing(
        tmp_path: Path, size: tuple[int, int]) -> None:
    """Issue 14: typing "PC 456 Smith" in the callsign box recorded the selected alert as "Confirmed –
    stopped" (the S); the decision buttons were below the fold at 1280x720 and 1366x768; the status bar
    wrapped to 5-8 lines and cut its text."""
    with handheld_rig(tmp_path) as rig, chromium() as chrome:
        older = rig.appliance.raise_alert(1, name="Test Subject Bravo", score=0.71, camera="cam1")
        alert = rig.appliance.raise_alert(2, name="Test Subject Alpha With A Long Double-Barrelled Name",
                                          category="wanted", reason="Warrant: failing to appear (test)",
                                          score=0.87)
        assert wait_for(lambda: rig.console.store.last_seq() == 2, timeout=10)
        page = _page(chrome, rig.operator_url, size)
        page.wait_for_selector("#detail:not(.hidden)")
        page.wait_for_selector("#handhelds:not(.hidden)")
        for key in "SNF":
            assert _inside(page, f"[data-testid=b-{key}]", size), f"{key} button outside {size}"
        assert page.locator("#statusbar").bounding_box()["height"] <= 48  # one line
        clipped = page.eval_on_selector_all(
            "#statusbar > *:not(.hidden):not(#details), #queue li *, .title-row *, .facts, .buttons button",
            "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.id || e.className)")
        assert clipped == []
        for which in ("probe", "reference"):
            page.wait_for_function(f"document.getElementById('{which}').naturalWidth > 0")
        sizes = [page.eval_on_selector(f"#{w}", "e => [e.clientWidth, e.clientHeight]") for w in ("probe", "reference")]
        assert sizes[0] == sizes[1] and min(sizes[0]) >= 200

        if size == (1366, 768):
            frame = Preview(camera="cam0", t_wall=time.time(), width=640, height=360,
                            jpeg=pixelated_scene_jpeg("cam0 live (test scene)"))
            assert wait_for(lambda: rig.appliance.link.publish_preview(frame) is None and page.evaluate(
                "document.getElementById('preview').naturalWidth > 0"), timeout=10)
            page.screenshot(path=str(_shots(tmp_path) / "viewer.png"))

        before, selected = _states(rig), page.eval_on_selector("#queue li.selected", "e => e.dataset.id")
        page.click("#hh-callsign")
        typed = "PC 456 SNFJK Smith sfnjk/"
        page.keyboard.type(typed)
        assert page.input_value("#hh-callsign") == typed
        page.click("#f-camera")                      # a drop-down and a number box take keys too
        page.keyboard.press("Escape")
        page.fill("#f-min-score", "")
        page.click("#f-min-score")
        page.keyboard.type("sn")
        time.sleep(1.0)                               # long enough for a decision to reach the appliance
        assert _states(rig) == before
        assert page.eval_on_selector("#queue li.selected", "e => e.dataset.id") == selected
        assert page.is_hidden("#toast")


        # focus on the alert: the key decides, and the page says which alert it went to
        page.locator("#alert-panel").click(position={"x": 5, "y": 5})
        page.keyboard.press("f")
        page.wait_for_selector("#toast:not(.hidden)")
        assert selected == older.id  # the oldest pending alert is the one on screen
        assert page.inner_text("#toast").startswith("False alert → alert #1 Test Subject Bravo")
        assert wait_for(lambda: _states(rig)[older.id] == ("decided", "false_alert"), timeout=10)
        assert _states(rig)[alert.id] == ("pending", None)
        page.wait_for_selector(f"#queue li.selected[data-id='{alert.id}']")  # then the next pending one


def _decode_qr(png: bytes) -> str:
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    text, _points, _straight = cv2.QRCodeDetector().detectAndDecode(image)
    return str(text)


@pytest.mark.slow
def test_the_pairing_qr_code_decodes_to_the_pairing_address_and_goes_once_used(tmp_path: Path) -> None:
    """Issue 14: the QR SVG had no viewBox and CSS squeezed it to 180 px, cutting its right and bottom
    (OpenCV decoded nothing); a used code stayed on screen."""
    with handheld_rig(tmp_path) as rig, chromium() as chrome:
        page = _page(chrome, rig.operator_url, (1366, 768))
        page.wait_for_selector("#handhelds:not(.hidden)")
        page.fill("#hh-callsign", "PC 456 Smith")
        page.click("#hh-pair button")
        page.wait_for_selector("#hh-qr svg")
        assert page.get_attribute("#hh-qr svg", "viewBox")
        url = page.get_attribute("#hh-link", "href")
        assert url.startswith(rig.site.base_url + "/#pair=")
        page.locator("#hh-offer").scroll_into_view_if_needed()
        side = page.eval_on_selector("#hh-qr svg", "e => e.getBoundingClientRect().width")
        assert side >= 180
        assert _decode_qr(page.locator("#hh-qr svg").screenshot()) == url
        with phone(chrome) as handset:
            handset.goto(url)
            handset.wait_for_function("document.getElementById('callsign').textContent === 'PC 456 Smith'")
        page.wait_for_selector("#hh-offer", state="hidden", timeout=5_000)
        assert page.inner_html("#hh-qr") == ""


@pytest.mark.slow
def test_after_deployment_stop_its_alerts_cannot_be_decided_and_its_names_leave_the_laptop(
        tmp_path: Path) -> None:
    """Issue 14: after `lfr deployment stop` the closed deployment's pending alerts kept names and reference
    photos on the laptop and could still be decided."""
    with handheld_rig(tmp_path) as rig, chromium() as chrome:
        names = ["Test Subject Kilo", "Test Subject Lima"]
        raised = [rig.appliance.raise_alert(i + 1, name=n) for i, n in enumerate(names)]
        assert wait_for(lambda: rig.console.store.last_seq() == 2, timeout=10)
        page = _page(chrome, rig.operator_url, (1366, 768))
        page.wait_for_selector("#detail:not(.hidden)")
        with pytest.raises(PolicyError, match="undecided"):
            deployments.stop(rig.appliance.db, clock=SystemClock(), actor="test", require_decided=True)
        deployments.stop(rig.appliance.db, clock=SystemClock(), actor="test")
        rig.appliance.set_health(deployment=None, watchlist_size=0)
        assert wait_for(lambda: {a["state"] for a in rig.console.store.alerts()} == {"archived"}, timeout=10)
        page.wait_for_selector("#queue li.archived >> nth=1")
        page.wait_for_function("document.getElementById('state').textContent.startsWith('Archived')")
        assert page.is_hidden("#decide")
        assert page.inner_text("#counts") == "no deployment open"
        page.click("#details-toggle")  # every deployment's counts, the closed one included
        assert page.inner_text("#details .by-deployment") == "2 alerts, 0 pending, 2 archived"
        page.locator("#alert-panel").click(position={"x": 5, "y": 5})
        page.keyboard.press("s")
        for a in raised:
            with pytest.raises(PolicyError, match="archived"):
                rig.console.decide(a.id, "confirmed_stopped")
        assert {a["state"] for a in rig.console.store.alerts()} == {"archived"}
        path = rig.console.store.path
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        for a in raised:
            assert a.subject_name.encode() not in raw and a.reference_jpeg not in raw
        state = rig.appliance.db.execute("SELECT state, reference_jpeg FROM alerts").fetchall()
        assert state == [("pending", None), ("pending", None)]  # the van refuses too, and dropped the photos
