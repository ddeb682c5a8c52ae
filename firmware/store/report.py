"""The publishable record of a deployment, as JSON, CSV or HTML (with an embedded score plot).

Facts only: when, where, under which authority, how big the watchlist was, the threshold, how many faces
passed, and how the alerts were decided. No images, no subject ids, and no names (neither of the public
nor of the officer): a report is published.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import sqlite_utils

from firmware.store import audit
from firmware.store.deployments import get
from firmware.store.stats import read_stats

REPORT_SCHEMA = 1
OUTCOMES: tuple[str, ...] = ("confirmed_stopped", "confirmed_not_stopped", "false_alert", "pending")
FORMATS: tuple[str, ...] = ("json", "csv", "html")


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


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
    return {
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
    """The report's headline figures as (metric, value) pairs, in reading order."""
    keys = ("deployment", "authority", "location", "started", "stopped", "duration_s", "status", "threshold",
            "watchlist_size", "frames", "faces_seen", "alerts")
    rows = [(k, report[k]) for k in keys]
    rows += [(f"alerts_{o}", report["alerts_by_outcome"][o]) for o in OUTCOMES]
    rows += [(k, report.get(k)) for k in ("operating_threshold", "expected_false_alerts_per_10k_tracks",
                                          "expected_false_alerts", "recorded_false_alerts")]
    rows += [("score_median", report["score_median"]), ("score_p95", report["score_p95"]),
             ("audit_head_seq", report["audit_head"]["seq"]),
             ("audit_head_hash", report["audit_head"]["hash"])]
    return rows


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def render_csv(report: dict[str, Any]) -> str:
    """Two columns, metric and value; empty value where a figure does not exist (e.g. no alerts)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["metric", "value"])
    for key, value in summary_rows(report):
        writer.writerow([key, "" if value is None else value])
    return out.getvalue()


def _score_plot_png(report: dict[str, Any]) -> bytes:
    """Histogram of alert scores by outcome with the threshold marked, as PNG bytes."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe in a service

    fig = Figure(figsize=(6, 3), dpi=100)
    ax = fig.subplots()
    bins = [i / 20 for i in range(21)]
    data = [[a["score"] for a in report["alert_list"] if a["outcome"] == o] for o in OUTCOMES]
    ax.hist(data, bins=bins, stacked=True, label=[o.replace("_", " ") for o in OUTCOMES])
    ax.axvline(report["threshold"], color="black", linestyle="--", label="threshold")
    ax.set_xlabel("alert score (0..1)")
    ax.set_ylabel("alerts")
    ax.set_xlim(0.0, 1.0)
    ax.legend(fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def render_html(report: dict[str, Any]) -> str:
    """A self-contained page: summary table, score plot (PNG in a data: URI) and the alert list."""
    esc = html.escape
    summary = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc('' if v is None else str(v))}</td></tr>"
                        for k, v in summary_rows(report))
    alerts = "\n".join(
        f"<tr><td>{esc(str(a['time']))}</td><td>{esc(a['camera'])}</td><td>{esc(a['category'])}</td>"
        f"<td>{a['score']:.3f}</td><td>{esc(a['outcome'])}</td></tr>" for a in report["alert_list"])
    png = base64.b64encode(_score_plot_png(report)).decode("ascii")
    title = f"LFR deployment {report['deployment']}: {esc(report['location'])}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}}th{{text-align:left}}
td,th{{padding:2px 8px}}</style></head>
<body><h1>{title}</h1>
<table>{summary}</table>
<h2>Alert scores</h2>
<img alt="histogram of alert scores by outcome" src="data:image/png;base64,{png}">
<h2>Alerts</h2>
<table><tr><th>time (UTC)</th><th>camera</th><th>category</th><th>score</th><th>outcome</th></tr>
{alerts}</table>
</body></html>
"""


def render(report: dict[str, Any], fmt: str) -> str:
    """The report in `fmt` (json, csv or html)."""
    renderers = {"json": render_json, "csv": render_csv, "html": render_html}
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return renderers[fmt](report)
