"""`lfr viewer` and `lfr bench link` from the command line, and the `[viewer]` config section."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from link_fixtures import free_port
from viewer_fixtures import wait_for

from firmware.bench.loopback import ApplianceProcess, LoopbackAppliance, make_keys
from firmware.cli.main import main
from firmware.config import load_config
from firmware.errors import ConfigError, LfrError
from firmware.store.db import open_db

REPO = Path(__file__).resolve().parent.parent


def write_config(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_viewer_section_refuses_nonsense(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path / "ok.toml", "[viewer]\nport = 9000\nsound = false\n")).viewer.port \
        == 9000
    for text, error in (("[viewer]\nport = 80\n", "viewer.port: 80 is below the minimum 1024"),
                        ("[viewer]\nretention_days = 31\n", "viewer.retention_days: 31 is above"),
                        ("[viewer]\nsound = 'loud'\n", "viewer.sound: expected bool"),
                        ("[viewer]\nbrowser = 'x'\n", "unknown key viewer.browser")):
        with pytest.raises(ConfigError, match=error):
            load_config(write_config(tmp_path / "bad.toml", text))


def test_viewer_without_its_keys_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "laptop.toml", f"""
[viewer]
state_dir = "{tmp_path / 'state'}"
[link]
secret_key = "{tmp_path / 'nowhere' / 'link.key_secret'}"
appliance_public_key = "{tmp_path / 'nowhere' / 'appliance.key'}"
""")
    assert main(["viewer", "--config", str(config), "--port", str(free_port())]) == 2
    assert "link.key_secret" in capsys.readouterr().err


@pytest.mark.slow
def test_lfr_viewer_serves_the_page_and_stops_on_sigterm(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    with LoopbackAppliance(tmp_path, keys) as appliance:
        alert = appliance.raise_alert(1)
        port = free_port()
        config = write_config(tmp_path / "laptop.toml", f"""
[viewer]
state_dir = "{tmp_path / 'laptop-state'}"
[link]
appliance_host = "127.0.0.1"
alerts_port = {appliance.link.alerts_port}
preview_port = {appliance.link.preview_port}
secret_key = "{keys.directory / 'laptop' / 'link.key_secret'}"
appliance_public_key = "{keys.directory / 'appliance' / 'link.key'}"
""")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen([sys.executable, "-m", "firmware.cli.main", "viewer", "--config", str(config),
                                 "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
        try:
            def has_alert() -> bool:
                try:
                    alerts = httpx.get(f"http://127.0.0.1:{port}/api/alerts", timeout=1).json()["alerts"]
                except httpx.HTTPError:
                    return False
                return [a["id"] for a in alerts] == [alert.id]
            assert wait_for(has_alert, timeout=20)
            assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    assert (tmp_path / "laptop-state" / "viewer.sqlite3").exists()


def test_a_taken_port_is_a_clear_error_before_anything_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = make_keys(tmp_path / "keys")
    config = write_config(tmp_path / "laptop.toml", f"""
[viewer]
state_dir = "{tmp_path / 'state'}"
[link]
secret_key = "{keys.directory / 'laptop' / 'link.key_secret'}"
appliance_public_key = "{keys.directory / 'appliance' / 'link.key'}"
""")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["viewer", "--config", str(config), "--port", str(port)]) == 2
    assert f"cannot serve the viewer on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_link_prints_latency_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "link", "--alerts", "5", "--no-browser", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["alerts"] == 5 and result["measured_at"] == "websocket receive"
    assert 0 < result["min_ms"] <= result["p50_ms"] <= result["p99_ms"] <= result["max_ms"] < 10_000
    assert set(result["parts"]) == {"record", "link", "viewer", "page"}
    assert result["appliance"] == "own process"
    slowest = result["slowest"][0]
    assert slowest["total_ms"] == pytest.approx(sum(slowest[f"{p}_ms"] for p in result["parts"]), abs=0.1)


@pytest.mark.slow
def test_bench_link_load_runs_quiet_then_loaded_and_stops_its_load(capsys: pytest.CaptureFixture[str]) -> None:
    import psutil

    from firmware.bench.link import BusyLoad

    with BusyLoad(2, nice=0) as load:
        pids = [p.pid for p in load.procs]
        # they run without sleeping (on a shared machine they get what the scheduler gives them)
        assert wait_for(lambda: all(psutil.Process(pid).cpu_times().user > 0.05 for pid in pids), timeout=10)
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)
    assert main(["bench", "link", "--alerts", "3", "--no-browser", "--load", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["load"] == 1 and result["alerts"] == 3 and result["quiet"]["alerts"] == 3
    assert main(["bench", "link", "--alerts", "3", "--no-browser", "--in-process", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["appliance"] == "bench process"
    assert main(["bench", "link", "--load", "-1"]) == 2
    assert main(["bench", "link", "--load", "1", "--load-nice", "-5"]) == 2


def test_bench_load_runs_at_the_camera_units_niceness() -> None:
    """The busy processes stand for camera pipelines, so they get the priority the camera unit gives them."""
    import psutil

    from firmware.bench.link import CAMERA_NICE, BusyLoad

    unit = (REPO / "systemd" / "lfr-camera@.service").read_text()
    assert f"\nNice={CAMERA_NICE}\n" in unit
    assert "Nice=" not in (REPO / "systemd" / "lfr-appliance.service").read_text()
    with BusyLoad(1) as load:
        time.sleep(0.5)
        assert psutil.Process(load.procs[0].pid).nice() == CAMERA_NICE


def test_bench_appliance_runs_in_its_own_process_and_records_in_the_shared_store(tmp_path: Path) -> None:
    """As on the van, the appliance end does not share the bench's process (nor its GIL); its store is real."""
    import psutil

    keys = make_keys(tmp_path / "keys")
    with ApplianceProcess(tmp_path, keys) as appliance:
        assert appliance.pid != os.getpid() and psutil.Process(appliance.pid).is_running()
        assert appliance.viewer_config.alerts_port > 0
        before = time.time()
        alert = appliance.raise_alert(1)
        assert before <= alert.t_wall <= time.time()  # wall time: comparable with the viewer's
        assert 0 < appliance.last_record_s < 10
        with pytest.raises(LfrError, match="unknown request"):
            appliance._call("no such request")
        db = open_db(tmp_path / "appliance.sqlite3", check_integrity=False)
        try:
            assert db.execute("SELECT COUNT(*) FROM alerts WHERE id = ?", (alert.id,)).fetchone()[0] == 1
        finally:
            db.close()
        pid = appliance.pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
