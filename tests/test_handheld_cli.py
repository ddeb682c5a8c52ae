"""`lfr viewer` with handhelds enabled: the certificate install step, and the two listeners kept apart."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from link_fixtures import free_port
from viewer_fixtures import wait_for

from firmware.bench.loopback import LoopbackAppliance, make_keys
from firmware.cli.main import main

REPO = Path(__file__).resolve().parent.parent


def test_handheld_cert_install_step_prints_the_fingerprint(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "laptop.toml"
    config.write_text(f'[viewer]\nstate_dir = "{tmp_path / "state"}"\n[handheld]\naddress = "10.9.8.7"\n')
    assert main(["viewer", "--config", str(config), "--handheld-cert"]) == 0
    out = capsys.readouterr().out
    assert "10.9.8.7" in out and "SHA-256 fingerprint:" in out
    assert (tmp_path / "state" / "handheld-cert.pem").exists()


@pytest.mark.slow
def test_lfr_viewer_serves_handhelds_over_https_apart_from_the_operator_page(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    with LoopbackAppliance(tmp_path, keys) as appliance:
        port, hport = free_port(), free_port()
        config = tmp_path / "laptop.toml"
        config.write_text(f"""
[viewer]
state_dir = "{tmp_path / 'state'}"
[handheld]
enabled = true
host = "127.0.0.1"
address = "127.0.0.1"
port = {hport}
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
            def listing() -> dict | None:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/api/handhelds", timeout=1).json()
                except httpx.HTTPError:
                    return None
            assert wait_for(lambda: listing() is not None, timeout=20)
            info = listing()
            assert info["url"] == f"https://127.0.0.1:{hport}" and info["devices"] == []
            # phones verify the laptop's own certificate; plain HTTP is not served there
            tls = ssl.create_default_context(cafile=str(tmp_path / "state" / "handheld-cert.pem"))
            with httpx.Client(verify=tls, base_url=info["url"]) as phone:
                assert phone.get("/").status_code == 200
                assert phone.get("/api/feed").status_code == 401          # unpaired: nothing
                assert phone.get("/api/alerts").status_code == 404        # no operator route here
                assert phone.get("/api/preview.jpg").status_code == 404
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{hport}/", timeout=2)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err


def test_operator_handheld_routes_refuse_a_foreign_page(tmp_path: Path) -> None:
    """A web site open in the operator's browser cannot pair, revoke or dispatch (cross-site requests)."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from firmware.viewer.handheld.operator import HandheldSite, operator_routes
    from firmware.viewer.handheld.service import Handhelds
    from firmware.viewer.handheld.store import HandheldStore
    from firmware.viewer.store import ViewerStore

    with ViewerStore(tmp_path / "v.sqlite3") as alerts, HandheldStore(tmp_path / "h.sqlite3") as store:
        site = HandheldSite(Handhelds(store, alerts, send=lambda e: None), "https://10.0.0.2:8443", "AA")
        client = TestClient(Starlette(routes=operator_routes(site)), base_url="http://127.0.0.1:8080")
        evil = {"Origin": "https://evil.example"}
        assert client.post("/api/handhelds/pair", json={"callsign": "X"}, headers=evil).status_code == 403
        assert store.read("SELECT COUNT(*) FROM pairings") == [(0,)]
        made = client.post("/api/handhelds/pair", json={"callsign": "PC 1"},
                           headers={"Origin": "http://127.0.0.1:8080"})
        assert made.status_code == 200 and made.json()["url"].startswith("https://10.0.0.2:8443/#pair=")
        assert made.json()["qr_svg"].startswith("<svg")
