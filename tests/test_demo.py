"""`lfr demo` headless for a bounded time: alerts reach the viewer, a decision made in the viewer's HTTP API
round-trips into the appliance's alert row and audit log, and Ctrl-C stops both children with status 0."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from firmware.demo.prepare import free_port

pytestmark = pytest.mark.slow  # runs for more than a few seconds: `make test`, not `make test-fast`

REPO = Path(__file__).resolve().parents[1]


def _alerts(port: int) -> list[dict]:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/api/alerts", timeout=2.0)
    except httpx.HTTPError:
        return []
    return r.json()["alerts"] if r.status_code == 200 else []


def test_demo_alerts_reach_the_viewer_and_a_decision_reaches_the_audit_log(tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "demo"
    demo = subprocess.Popen([sys.executable, "-m", "firmware.cli.main", "demo", "--seconds", "60", "--port",
                             str(port), "--state-dir", str(state), "--json"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    decided = None
    first_alert_s = None
    try:
        while demo.poll() is None and time.monotonic() - started < 120:
            alerts = _alerts(port)
            if alerts and first_alert_s is None:
                first_alert_s = time.monotonic() - started
            if alerts and decided is None:
                decided = alerts[-1]["id"]
                r = httpx.post(f"http://127.0.0.1:{port}/api/alerts/{decided}/decision",
                               json={"outcome": "false_alert", "note": "demo test"}, timeout=5.0,
                               headers={"Origin": f"http://127.0.0.1:{port}"})
                assert r.status_code == 200, r.text
            if decided is not None:
                states = {a["id"]: a["state"] for a in alerts}
                if states.get(decided) == "decided":
                    demo.send_signal(signal.SIGINT)  # Ctrl-C: both children must stop cleanly
                    break
            time.sleep(0.5)
        out, err = demo.communicate(timeout=90)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, err[-2000:]
    result = json.loads(out[out.rindex('{\n  "exit"'):])  # after the set-up steps' text
    assert result["exit"] == {"appliance": 0, "viewer": 0}
    # the demo says which config its state uses, and other commands reach that state with it (issue 14)
    assert f"export LFR_CONFIG={result['lfr_config']}" in out
    listed = subprocess.run([sys.executable, "-m", "firmware.cli.main", "deployment", "list", "--json"], cwd=REPO,
                            env={**os.environ, "LFR_CONFIG": result["lfr_config"]}, capture_output=True, text=True)
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["deployments"]) == 1, listed.stderr
    assert first_alert_s is not None and decided is not None, "no alert reached the viewer"
    viewer = sqlite3.connect(state / "viewer" / "viewer.sqlite3")
    rows = viewer.execute("SELECT id, state, outcome FROM alerts").fetchall()
    viewer.close()
    assert (decided, "decided", "false_alert") in rows
    appliance = sqlite3.connect(state / "appliance" / "lfr.sqlite3")
    audit = [json.loads(d) for (d,) in appliance.execute("SELECT details FROM audit WHERE action = 'decision'")]
    alert_row = appliance.execute("SELECT state, decision FROM alerts WHERE id = ?", [decided]).fetchone()
    appliance.close()
    assert [a["alert_id"] for a in audit] == [decided]
    assert audit[0]["decision"] == "false_alert"
    assert alert_row == ("decided", "false_alert")
    print(f"demo: {len(rows)} alert(s) at the viewer, first after {first_alert_s:.1f} s (set-up included)")
