"""The publishable record of a deployment, as JSON, CSV or HTML (with an embedded score plot).

Facts only: when, where, under which authority, how big the watchlist was, the threshold, how many faces
passed, and how the alerts were decided. No images, no subject ids, and no names (neither of the public
nor of the officer): a report is published.
"""

from __future__ import annotations

import csv
import html
import io
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlite_utils

from firmware.errors import StorageError
from firmware.store import audit
from firmware.store.deployments import get
from firmware.store.report_chart import score_histogram_svg
from firmware.store.stats import read_stats

REPORT_SCHEMA = 1
OUTCOMES: tuple[str, ...] = ("confirmed_stopped", "confirmed_not_stopped", "false_alert", "pending")
FORMATS: tuple[str, ...] = ("json", "csv", "html")


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def find_deployment(db: sqlite_utils.Database, name: str) -> int:
    """The id of the deployment `name` names: its number, or its authority reference (as people quote it,
    e.g. REF-2026-0142). A reference used by several deployments is refused with their numbers."""
    if name.isdigit():
        return get(db, int(name)).id
    ids = [int(r[0]) for r in db.execute("SELECT id FROM deployments WHERE authority = ? ORDER BY id", [name])]
    if not ids:
        raise StorageError(f"no deployment with id or authority reference {name!r}; `lfr deployment list` "
                           "shows them")
    if len(ids) > 1:
        raise StorageError(f"authority reference {name!r} covers deployments {', '.join(map(str, ids))}; "
                           "give the deployment's number")
    return ids[0]


def report_file_name(report: dict[str, Any], fmt: str) -> str:
    """The default file of a report: named after the deployment's authority reference and number."""
    ref = "".join(c if c.isalnum() or c in "-_." else "-" for c in str(report["authority"])).strip("-.") or "lfr"
    return f"lfr-report-{ref}-{report['deployment']}.{fmt}"


def build_report(db: sqlite_utils.Database, deployment_id: int) -> dict[str, Any]:
    """The report's facts as a JSON-ready dict (times ISO 8601 UTC, scores 0..1)."""
    dep = get(db, deployment_id)
    stats = read_stats(db, deployment_id)
    live = db.execute("SELECT COUNT(*) FROM watchlist_entries WHERE deployment_id = ?", [deployment_id])
    watchlist_size = max(int(stats["watchlist_size"]), int(live.fetchone()[0]))
    rows = db.execute("SELECT t_wall, camera, category, score, state, decision FROM alerts "
                      "WHERE deployment_id = ? ORDER BY seq", [deployment_id]).fetchall()
    alerts = [{"time": _iso(t), "camera": cam, "category": cat, "score": round(float(score), 4),
               "outcome": decision if state == "decided" else "pending"}
              for t, cam, cat, score, state, decision in rows]
    by_outcome = {o: sum(1 for a in alerts if a["outcome"] == o) for o in OUTCOMES}
    scores = np.array([a["score"] for a in alerts], dtype=np.float64)
    seq, digest = audit.head(db)
    ops = operating_points(db, deployment_id)
    last = ops[-1] if ops else None
    rate = last.get("expected_false_alerts_per_10k_tracks") if last else None
    facts: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "deployment": dep.id,
        "authority": dep.authority,
        "location": dep.location,
        "started": _iso(dep.started),
        "stopped": _iso(dep.stopped),
        "duration_s": None if dep.stopped is None else round(dep.stopped - dep.started, 1),
        "status": "open" if dep.is_open else "closed",
        "threshold": dep.threshold,
        "watchlist_size": watchlist_size,
        "frames": int(stats["frames"]),
        "faces_seen": int(stats["faces_seen"]),
        "alerts": len(alerts),
        "alerts_by_outcome": by_outcome,
        "field_by_outcome": {k: int(stats[f"field_{k}"])
                             for k in ("engaged", "not_located", "arrested", "advised", "no_action")},
        "score_median": round(float(np.median(scores)), 4) if len(scores) else None,
        "score_p95": round(float(np.percentile(scores, 95)), 4) if len(scores) else None,
        "alert_list": alerts,
        "audit_head": {"seq": seq, "hash": digest},
        "operating_points": ops,
        "operating_threshold": last.get("threshold_score") if last else None,
        "expected_false_alerts_per_10k_tracks": rate,
        "expected_false_alerts": (round(rate * int(stats["faces_seen"]) / 10_000, 2)
                                  if isinstance(rate, (int, float)) else None),
        "recorded_false_alerts": by_outcome["false_alert"],
    }
    # the loaded list's operating point beside the false alerts the operators recorded (the HTML section)
    facts["operating_point"] = ({**{k: v for k, v in last.items() if k != "note" or v},
                                 "expected_false_alerts": facts["expected_false_alerts"],
                                 "recorded_false_alerts": facts["recorded_false_alerts"]} if last else None)
    facts["published_record"] = dict(published_record(facts))
    return facts


FIELD_OUTCOMES: tuple[str, ...] = ("engaged", "not_located", "arrested", "advised", "no_action")

LABELS: dict[str, str] = {
    "deployment": "Deployment number", "authority": "Authority reference", "location": "Location",
    "started": "Started (UTC)", "stopped": "Stopped (UTC)", "duration_s": "Duration", "status": "Status",
    "threshold": "Alert threshold (score 0..1)", "watchlist_size": "Watchlist size (people)",
    "frames": "Camera frames processed", "faces_seen": "Faces seen (people passing, counted by track)",
    "alerts": "Alerts", "confirmed_stopped": "Confirmed by the operator – stopped",
    "confirmed_not_stopped": "Confirmed by the operator – not stopped", "false_alert": "False alerts",
    "pending": "Not decided", "score_median": "Median alert score", "score_p95": "95th percentile alert score",
    "engaged": "Engaged by officers", "not_located": "Not located by officers", "arrested": "Arrests",
    "advised": "Advised (words of advice)", "no_action": "No further action",
    "audit_head_seq": "Audit log: rows at the time of the report",
    "audit_head_hash": "Audit log: newest row's SHA-256",
    "operating_threshold": "Threshold in force for the list loaded (score 0..1; raised for its size)",
    "expected_false_alerts_per_10k_tracks": "Expected false alerts per 10,000 people passing (for that list)",
    "expected_false_alerts": "Expected false alerts for the faces seen",
    "recorded_false_alerts": "False alerts recorded by the operators",
}
"""What each figure is called on the published page (JSON and CSV keep the field names)."""


def published_record(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """The deployment in the shape of the Metropolitan Police's published LFR deployment records: date,
    times, location, watchlist size, faces seen, alerts, true and false alerts, the false alert rate, arrests
    and other outcomes; every field they publish, from this deployment's own figures."""
    by = report["alerts_by_outcome"]
    field = report["field_by_outcome"]
    true_alerts = by["confirmed_stopped"] + by["confirmed_not_stopped"]
    faces = report["faces_seen"]
    rate = f"{by['false_alert'] / faces:.6%} of faces seen" if faces else "–"
    started, stopped = report["started"], report["stopped"]
    return [
        ("Date", started[:10] if started else "–"),
        ("Time", f"{started[11:16]}–{stopped[11:16] if stopped else 'open'} UTC" if started else "–"),
        ("Location", report["location"]),
        ("Authority reference", report["authority"]),
        ("Watchlist size", report["watchlist_size"]),
        ("Faces seen", faces),
        ("Alerts", report["alerts"]),
        ("True alerts (confirmed)", true_alerts),
        ("False alerts", by["false_alert"]),
        ("False alert rate", rate),
        ("Alerts not decided", by["pending"]),
        ("Engagements", field["engaged"]),
        ("Arrests", field["arrested"]),
        ("Other outcomes", f"{field['advised']} advised, {field['no_action']} no further action, "
                           f"{field['not_located']} not located"),
        ("Alert threshold", report["threshold"]),
    ]


def operating_points(db: sqlite_utils.Database, deployment_id: int) -> list[dict[str, Any]]:
    """The operating point of every watchlist imported in the deployment, oldest first (facts, no names)."""
    out = []
    for imported_at, report in db.execute("SELECT imported_at, report FROM watchlists WHERE deployment_id = ? "
                                          "ORDER BY id", [deployment_id]).fetchall():
        try:
            op = json.loads(report).get("operating_point")
        except (ValueError, AttributeError):
            op = None
        if isinstance(op, dict):
            out.append({"imported": _iso(float(imported_at)), **op})
    return out


def summary_rows(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """The report's headline figures as (field name, value) pairs, in reading order (the CSV's rows)."""
    keys = ("deployment", "authority", "location", "started", "stopped", "duration_s", "status", "threshold",
            "watchlist_size", "frames", "faces_seen", "alerts")
    rows = [(k, report[k]) for k in keys]
    rows += [(f"alerts_{o}", report["alerts_by_outcome"][o]) for o in OUTCOMES]
    rows += [(f"field_{o}", report["field_by_outcome"][o]) for o in FIELD_OUTCOMES]
    rows += [(k, report.get(k)) for k in ("operating_threshold", "expected_false_alerts_per_10k_tracks",
                                          "expected_false_alerts", "recorded_false_alerts")]
    rows += [("score_median", report["score_median"]), ("score_p95", report["score_p95"]),
             ("audit_head_seq", report["audit_head"]["seq"]),
             ("audit_head_hash", report["audit_head"]["hash"])]
    return rows


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "still open"
    minutes = int(round(seconds / 60))
    return f"{minutes // 60} h {minutes % 60:02d} min"


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A text cell starting with one of these is taken as a formula by spreadsheet programs (CSV injection)."""


def spreadsheet_safe(value: object) -> object:
    """`value` for a CSV cell: text that a spreadsheet would run as a formula (`=HYPERLINK(...)` typed as
    a location or an officer's name) gets a leading apostrophe, so it is shown as text; numbers pass."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(report: dict[str, Any]) -> str:
    """Two columns, metric and value; empty value where a figure does not exist (e.g. no alerts); text that
    a spreadsheet would evaluate is neutralised (`spreadsheet_safe`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "value"])
    for key, value in summary_rows(report):
        writer.writerow([spreadsheet_safe(key), "" if value is None else spreadsheet_safe(value)])
    return out.getvalue()


def _score_chart(report: dict[str, Any]) -> str:
    """Histogram of alert scores by outcome with the threshold marked, as inline SVG."""
    scores = {o: [a["score"] for a in report["alert_list"] if a["outcome"] == o] for o in OUTCOMES}
    return score_histogram_svg(scores, report["threshold"])


_STYLE = """body{font:15px/1.45 system-ui,"DejaVu Sans",sans-serif;max-width:54em;margin:2em auto;padding:0 1em;
color:#111}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ccc;padding-bottom:.2em}
.sub{color:#555;margin-top:0}table{border-collapse:collapse;margin:.5em 0}th,td{padding:3px 10px;text-align:left;
vertical-align:top}table.facts th{font-weight:normal;color:#444;width:22em}td.n{text-align:right;
font-variant-numeric:tabular-nums}table.list th{border-bottom:1px solid #999}table.list td{border-bottom:1px solid #eee}
.record{border:1px solid #bbb;background:#fafafa}code{word-break:break-all}.note{color:#555}"""


def _facts(rows: list[tuple[str, Any]]) -> str:
    esc = html.escape
    cells = []
    for label, value in rows:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        text = "–" if value is None else str(value)
        cell = '<td class="n">' if numeric else "<td>"
        cells.append(f"<tr><th>{esc(label)}</th>{cell}{esc(text)}</td></tr>")
    return '<table class="facts">' + "".join(cells) + "</table>"


def _operating_point(report: dict[str, Any]) -> list[tuple[str, Any]]:
    """The operating point's figures when the report carries one (issue 12 adds it), as labelled rows."""
    point = report.get("operating_point")
    if not isinstance(point, dict):
        return []
    return [(k.replace("_", " ").capitalize(), v) for k, v in point.items() if not isinstance(v, (dict, list))]


def render_html(report: dict[str, Any]) -> str:
    """A self-contained page in sections: the published record, the deployment, watchlist and operating point,
    faces and alerts (with the score chart and the alert list), outcomes from officers' handhelds, audit."""
    esc = html.escape
    by, field = report["alerts_by_outcome"], report["field_by_outcome"]
    record = _facts(published_record(report)).replace('class="facts"', 'class="facts record"', 1)
    deployment = _facts([(LABELS[k], report[k]) for k in ("authority", "location", "started", "stopped")]
                        + [(LABELS["duration_s"], _duration(report["duration_s"])),
                           (LABELS["status"], report["status"])])
    watchlist = _facts([(LABELS["watchlist_size"], report["watchlist_size"]),
                        (LABELS["threshold"], report["threshold"]), *_operating_point(report)])
    faces = _facts([(LABELS[k], report[k]) for k in ("frames", "faces_seen", "alerts")]
                   + [(LABELS[o], by[o]) for o in OUTCOMES]
                   + [(LABELS["score_median"], report["score_median"]), (LABELS["score_p95"], report["score_p95"])])
    officers = _facts([(LABELS[o], field[o]) for o in FIELD_OUTCOMES])
    audit_rows = _facts([(LABELS["audit_head_seq"], report["audit_head"]["seq"]),
                         (LABELS["audit_head_hash"], report["audit_head"]["hash"])])
    outcome_label = {"confirmed_stopped": "confirmed – stopped", "confirmed_not_stopped": "confirmed – not stopped",
                     "false_alert": "false alert", "pending": "not decided"}
    alerts = "\n".join(
        f"<tr><td>{esc(str(a['time']))}</td><td>{esc(a['camera'])}</td><td>{esc(a['category'])}</td>"
        f"<td class=\"n\">{a['score']:.3f}</td><td>{esc(outcome_label.get(a['outcome'], a['outcome']))}</td></tr>"
        for a in report["alert_list"]) or '<tr><td colspan="5">No alerts.</td></tr>'
    title = f"LFR deployment {esc(str(report['authority']))}: {esc(report['location'])}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_STYLE}</style></head>
<body><h1>{title}</h1>
<p class="sub">Live facial recognition deployment report (deployment number {report['deployment']}). Facts only: no
images, no names of anyone, alerted or not.</p>
<h2>Published record</h2>
{record}
<h2>Deployment</h2>
{deployment}
<h2>Watchlist and operating point</h2>
{watchlist}
<p class="note">The watchlist was wiped from the van when the deployment stopped.</p>
<h2>Faces and alerts</h2>
{faces}
<h3>Alert scores</h3>
{_score_chart(report)}
<h3>Alerts</h3>
<table class="list"><tr><th>time (UTC)</th><th>camera</th><th>category</th><th>score</th><th>outcome</th></tr>
{alerts}</table>
<h2>Outcomes reported from officers' handhelds</h2>
{officers}
<h2>Audit</h2>
{audit_rows}
<p class="note">Check that the van's audit log still ends at this row with <code>lfr audit verify</code>: a log cut
short after publication no longer matches this hash.</p>
</body></html>
"""


def render(report: dict[str, Any], fmt: str) -> str:
    """The report in `fmt` (json, csv or html)."""
    renderers = {"json": render_json, "csv": render_csv, "html": render_html}
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return renderers[fmt](report)
