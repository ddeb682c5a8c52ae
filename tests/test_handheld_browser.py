"""Officers' handhelds in Debian's headless Chromium at phone size, over HTTPS with the viewer's self-signed
certificate, against a real link to a loopback appliance (real store, audit log and stats).

Every image is a face-free stand-in made by `firmware.viewer.sample_images`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from handheld_fixtures import chromium, handheld_rig, operator_page, pair_phone, phone
from viewer_fixtures import wait_for

from firmware.errors import PolicyError
from firmware.store import audit
from firmware.store.stats import read_stats

pytestmark = pytest.mark.slow  # runs for more than a few seconds: `make test`, not `make test-fast`

CARD = "#cards article[data-alert-id='{}']"


def _cards(page) -> list[str]:
    return page.eval_on_selector_all("#cards article", "els => els.map(e => e.dataset.alertId)")


def test_pairing_from_the_operator_screen_and_an_outcome_reaching_the_appliance(tmp_path: Path) -> None:
    with handheld_rig(tmp_path) as rig, chromium() as pw, operator_page(pw, rig.operator_url) as op, \
            phone(pw) as alpha, phone(pw) as bravo, phone(pw) as stranger:
        # the operator adds a handheld: a QR code (SVG) and its one-time address appear on the laptop
        op.wait_for_selector("#handhelds:not(.hidden)")
        op.fill("#hh-callsign", "PC Alpha")
        op.click("#hh-pair button")
        op.wait_for_selector("#hh-qr svg")
        url = op.get_attribute("#hh-link", "href")
        assert url.startswith(rig.site.base_url + "/#pair=")
        alpha.goto(url)
        alpha.wait_for_function("document.getElementById('callsign').textContent === 'PC Alpha'")
        assert "#pair" not in alpha.url  # the one-time code leaves the address bar
        # the same code does not pair a second phone; an unpaired phone sees nothing
        stranger.goto(url)
        stranger.wait_for_selector("#unpaired:not(.hidden)")
        assert _cards(stranger) == [] and stranger.inner_text("#callsign") == ""
        pair_phone(rig, bravo, "PC Bravo")
        # the pairing events reach the appliance over the link a moment after the phones are paired
        assert wait_for(lambda: [d["callsign"] for d in rig.appliance_audit("handheld_paired")]
                        == ["PC Alpha", "PC Bravo"], timeout=10)

        # a confirmed alert, sent from the operator's screen to PC Alpha only
        alert_id = rig.confirmed_alert(1, category="wanted", reason="Warrant: failing to appear (test)")
        op.wait_for_selector("#hh-choices input")  # handheld list loaded
        op.click(f"#queue li[data-id='{alert_id}']")
        op.wait_for_selector("#dispatch:not(.hidden)")
        alpha_id = next(d.id for d in rig.handhelds.store.devices() if d.callsign == "PC Alpha")
        op.check(f"#hh-choices input[value='{alpha_id}']")
        op.click("#hh-send")
        op.wait_for_function("document.getElementById('hh-sent').textContent.includes('PC Alpha')")

        alpha.wait_for_selector(CARD.format(alert_id), timeout=10_000)
        card = alpha.locator(CARD.format(alert_id))
        assert card.locator(".category").inner_text().lower() == "wanted"
        assert card.locator(".reason").inner_text() == "Warrant: failing to appear (test)"
        assert "cam0" in card.locator(".where").inner_text()
        for which in ("probe", "reference", "context"):
            alpha.wait_for_function(f"document.querySelector(\"{CARD.format(alert_id)} .{which}\").naturalWidth > 0")
        # the alert's context frame (made on the van, other faces pixelated) reached the laptop and the phone
        sent = rig.appliance.db.execute("SELECT context_jpeg FROM alerts WHERE id = ?", [alert_id]).fetchone()[0]
        assert sent and rig.console.store.image(alert_id, "context") == bytes(sent)
        assert alpha.evaluate(f"fetch('/api/alerts/{alert_id}/context.jpg').then(r => r.arrayBuffer())"
                              ".then(b => b.byteLength)") == len(sent)
        op.wait_for_selector("#context-panel:not(.hidden)")
        assert op.get_attribute("#context", "src") == f"/api/alerts/{alert_id}/context.jpg"
        card.locator(".context").click()  # tap to enlarge, tap to close
        alpha.wait_for_selector("#zoom:not(.hidden)")
        alpha.click("#zoom")
        alpha.wait_for_selector("#zoom", state="hidden")
        shots = Path(os.environ.get("LFR_SCREENSHOT_DIR", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        alpha.screenshot(path=str(shots / "handheld.png"))
        time.sleep(1.5)  # three polls of PC Bravo's page
        assert _cards(bravo) == [] and not bravo.is_hidden("#idle")

        # reload, phone locked (page hidden) and Wi-Fi gone: what was missed arrives, nothing twice
        alpha.reload()
        alpha.wait_for_selector(CARD.format(alert_id))
        alpha.context.set_offline(True)
        second = rig.confirmed_alert(2, outcome="confirmed_not_stopped")
        rig.handhelds.dispatch(second, [alpha_id])
        alpha.wait_for_function("document.getElementById('net').textContent.includes('no connection')")
        alpha.context.set_offline(False)
        alpha.wait_for_selector(CARD.format(second), timeout=10_000)
        time.sleep(1.5)
        assert sorted(_cards(alpha)) == sorted([alert_id, second])

        # the officer reports the outcome: it reaches the appliance's alert row, audit log and stats
        card.locator("button[data-answer='engaged']").click()
        card.locator("button[data-answer='arrested']").click()
        assert wait_for(lambda: len(rig.appliance_audit("handheld_arrested")) == 1, timeout=15)
        assert rig.appliance_audit("handheld_arrested")[0]["alert_id"] == alert_id
        assert rig.appliance_audit("handheld_arrested")[0]["callsign"] == "PC Alpha"
        row = rig.appliance.db.execute("SELECT field_status, field_outcome, field_callsign FROM alerts "
                                       "WHERE id = ?", [alert_id]).fetchone()
        assert tuple(row) == ("engaged", "arrested", "PC Alpha")
        stats = read_stats(rig.appliance.db, rig.appliance.deployment.id)
        assert (stats["field_engaged"], stats["field_arrested"]) == (1, 1)
        assert audit.verify(rig.appliance.db).ok
        op.click(f"#queue li[data-id='{alert_id}']")  # the operator sees the field's answers
        op.wait_for_function("document.getElementById('hh-sent').textContent.includes('PC Alpha: arrested')",
                             timeout=10_000)
        # an outcome closes the alert: it goes from the handheld
        alpha.wait_for_selector(CARD.format(alert_id), state="detached", timeout=5_000)
        assert _cards(alpha) == [second]


def test_details_go_after_revocation_and_at_the_end_of_the_deployment(tmp_path: Path) -> None:
    with handheld_rig(tmp_path) as rig, chromium() as pw, operator_page(pw, rig.operator_url) as op, \
            phone(pw) as alpha, phone(pw) as bravo:
        alpha_id = pair_phone(rig, alpha, "PC Alpha")
        pair_phone(rig, bravo, "PC Bravo")
        alert_id = rig.confirmed_alert(1)
        assert sorted(rig.handhelds.dispatch(alert_id, None)) == ["PC Alpha", "PC Bravo"]  # all on duty
        for page in (alpha, bravo):
            page.wait_for_selector(CARD.format(alert_id), timeout=10_000)
        image_url = f"{rig.site.base_url}/api/alerts/{alert_id}/probe.jpg"
        assert alpha.request.get(image_url).status == 200

        # the operator revokes PC Alpha from the laptop page
        op.wait_for_selector(f"#hh-devices li[data-id='{alpha_id}']")
        op.on("dialog", lambda d: d.accept())
        op.click(f"#hh-devices li[data-id='{alpha_id}'] button.revoke")
        alpha.wait_for_selector("#unpaired:not(.hidden)", timeout=10_000)
        assert _cards(alpha) == []
        assert alpha.request.get(image_url).status == 401
        assert wait_for(lambda: [d["callsign"] for d in rig.appliance_audit("handheld_revoked")] == ["PC Alpha"],
                        timeout=15)

        # the deployment ends on the appliance: PC Bravo's details go too, and stay gone after a reload
        rig.appliance.set_health(deployment=None)
        bravo.wait_for_selector(CARD.format(alert_id), state="detached", timeout=10_000)
        bravo.reload()
        bravo.wait_for_selector("#idle:not(.hidden)")
        assert _cards(bravo) == []
        assert bravo.request.get(image_url).status == 404


def test_a_pending_alert_never_reaches_a_handheld(tmp_path: Path) -> None:
    with handheld_rig(tmp_path) as rig, chromium() as pw, phone(pw) as alpha:
        bodies: list[str] = []
        alpha.on("response", lambda r: bodies.append(r.text()) if "/api/" in r.url else None)
        pair_phone(rig, alpha, "PC Alpha")
        secret = "Pending reason that must stay on the laptop"
        pending = rig.appliance.raise_alert(1, reason=secret)
        assert wait_for(lambda: rig.console.store.alert(pending.id) is not None, timeout=15)
        false = rig.appliance.raise_alert(2, reason=secret)
        assert wait_for(lambda: rig.console.store.alert(false.id) is not None, timeout=15)
        rig.console.decide(false.id, "false_alert")
        for alert_id in (pending.id, false.id):
            with pytest.raises(PolicyError, match="not confirmed"):
                rig.handhelds.dispatch(alert_id, None)
        time.sleep(1.5)
        assert _cards(alpha) == []
        assert bodies and not any(secret in b or pending.id in b or false.id in b for b in bodies)
        assert rig.appliance_audit("handheld_dispatched") == []
