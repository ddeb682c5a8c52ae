"""`lfr deployment|audit|purge|report` end to end, on a config whose state_dir is a temporary folder."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from firmware.cli.main import main
from firmware.errors import PolicyError


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "appliance.toml"
    path.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n[storage]\nretention_days = 7\n'
                    '[match]\nthreshold = 0.65\n')
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_deployment_lifecycle_report_audit_and_purge(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    c = ["--config", str(config)]
    status, out, _ = run(capsys, "deployment", "start", "--authority", "AUTH-9", "--officer", "PC Nine",
                         "--location", "Bridge Rd", *c, "--json")
    assert status == 0 and json.loads(out)["threshold"] == 0.65
    assert (tmp_path / "state" / "lfr.sqlite3").exists()

    status, _, err = run(capsys, "deployment", "start", "--authority", "AUTH-10", "--officer", "PC",
                         "--location", "X", *c)
    assert status == 2 and "lfr: error: deployment 1 (Bridge Rd, authority AUTH-9) is still open" in err

    status, out, _ = run(capsys, "deployment", "stop", *c)
    assert status == 0 and "deployment 1 stopped; 0 watchlist entries wiped" in out
    status, out, _ = run(capsys, "deployment", "list", *c, "--json")
    (dep,) = json.loads(out)["deployments"]
    assert dep["authority"] == "AUTH-9" and dep["stopped"] is not None

    status, out, _ = run(capsys, "purge", *c, "--json")
    assert status == 0 and json.loads(out)["retention_days"] == 7

    out_file = tmp_path / "report.html"
    status, _, err = run(capsys, "report", "1", "--format", "html", "--out", str(out_file), *c)
    assert status == 0 and out_file.read_text().startswith("<!DOCTYPE html>")
    # by the authority reference people quote, and into a file named after it rather than the terminal
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "report", "AUTH-9", "--format", "html", *c)
    assert status == 0 and out == "" and "written to lfr-report-AUTH-9-1.html" in err
    assert (tmp_path / "lfr-report-AUTH-9-1.html").read_text().startswith("<!DOCTYPE html>")
    status, out, _ = run(capsys, "report", "AUTH-9", "--format", "html", "--out", "-", *c)
    assert status == 0 and out.startswith("<!DOCTYPE html>")
    status, _, err = run(capsys, "report", "REF-2026-0142", *c)
    assert status == 2 and "no deployment with id or authority reference 'REF-2026-0142'" in err
    status, out, _ = run(capsys, "report", "1", "--format", "csv", *c)
    assert status == 0 and "authority,AUTH-9" in out
    status, out, _ = run(capsys, "report", "1", "--json", *c)
    assert status == 0 and json.loads(out)["authority"] == "AUTH-9"
    status, _, err = run(capsys, "report", "5", *c)
    assert status == 2 and "no deployment with id 5" in err

    status, out, _ = run(capsys, "audit", "verify", *c)
    assert status == 0 and "audit log OK: 4 rows" in out  # start, wipe, stop, purge


def test_audit_verify_names_the_broken_row(config: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    c = ["--config", str(config)]
    run(capsys, "deployment", "start", "--authority", "A", "--officer", "O", "--location", "L", *c)
    run(capsys, "deployment", "stop", *c)
    conn = sqlite3.connect(tmp_path / "state" / "lfr.sqlite3")
    conn.execute("DROP TRIGGER audit_no_update")
    conn.execute("UPDATE audit SET actor = 'cli:nobody' WHERE seq = 2")
    conn.commit()
    conn.close()
    status, out, _ = run(capsys, "audit", "verify", *c)
    assert status == 1 and "audit log BROKEN at row 2" in out
    status, out, _ = run(capsys, "audit", "verify", *c, "--json")
    assert status == 1 and json.loads(out)["broken_seq"] == 2


def test_corrupt_database_is_a_clear_error(config: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "lfr.sqlite3").write_bytes(b"\x00garbage" * 1000)
    status, _, err = run(capsys, "deployment", "list", "--config", str(config))
    assert status == 2 and "is not a SQLite database or is corrupt" in err and "Traceback" not in err


def test_stop_with_undecided_alerts_needs_force_and_list_has_a_header_and_counts(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 14: `lfr deployment stop` with 83 undecided alerts did not warn; `deployment list` had no
    header or counts although the docs said it had."""
    from firmware.hardware.clock import FakeClock
    from firmware.store import alerts
    from firmware.store.db import open_db

    c = ["--config", str(config)]
    run(capsys, "deployment", "start", "--authority", "REF-2026-0142", "--officer", "PC", "--location", "High St", *c)
    db = open_db(tmp_path / "state" / "lfr.sqlite3")
    clock = FakeClock()
    for track in range(3):
        alerts.record_alert(db, alerts.NewAlert(
            deployment_id=1, t_wall=clock.time(), t_mono=clock.monotonic(), camera="cam0", track_id=track,
            subject_id="S-1", subject_name="Someone", score=0.8, category="wanted", reason="test",
            probe_jpeg=b"\xff\xd8\xffP", reference_jpeg=b"\xff\xd8\xffR"), actor="test")
    alerts.record_decision(db, db.execute("SELECT id FROM alerts ORDER BY seq").fetchone()[0], "false_alert",
                           clock=clock, actor="test")
    db.close()

    status, out, _ = run(capsys, "deployment", "list", *c)
    header, row = out.splitlines()
    assert header.split() == ["ID", "STARTED", "STOPPED", "AUTHORITY", "WATCHLIST", "FACES", "ALERTS", "PENDING",
                              "LOCATION"]
    assert row.split()[0] == "1" and row.split()[-4:] == ["3", "2", "High", "St"]

    status, _, err = run(capsys, "deployment", "stop", *c)
    assert status == 2 and "deployment 1 still has undecided alerts (2)" in err and "--force" in err
    status, out, _ = run(capsys, "deployment", "stop", "--force", *c)
    assert status == 0 and "warning: undecided alerts archived (2)" in out
    db = open_db(tmp_path / "state" / "lfr.sqlite3")
    pending = db.execute("SELECT id FROM alerts WHERE state = 'pending'").fetchone()[0]
    with pytest.raises(PolicyError, match="closed"):
        alerts.record_decision(db, pending, "false_alert", clock=clock, actor="test")
    assert db.execute("SELECT COUNT(*) FROM alerts WHERE reference_jpeg IS NOT NULL").fetchone()[0] == 0
    db.close()
