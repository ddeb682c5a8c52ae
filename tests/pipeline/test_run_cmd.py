"""`lfr run` as systemd runs it: --validate-config, the hub and a camera as separate processes over the Unix
socket (SIGTERM stops the hub cleanly), and the all-in-one development mode with --frames."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from firmware.bench.scene_run import acceptance_scene
from firmware.bench.testbed import add_watchlist, open_deployment
from firmware.cli.main import main
from firmware.config import REPO_MODELS_DIR, load_config
from firmware.embed.recognizer import Recognizer
from firmware.store.db import open_config_db
from firmware.store.stats import read_stats


@pytest.fixture()
def short_dir() -> Iterator[Path]:
    """A short directory for the Unix socket (socket paths are limited to about 107 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="lfr-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture()
def appliance(tmp_path: Path, short_dir: Path, lfw_dir: Path, background: np.ndarray,
              recognizer: Recognizer) -> Path:
    """A config file: state in tmp_path, a replay camera on a scene folder, an open deployment + watchlist."""
    scene, watchlist = acceptance_scene(lfw_dir, background, people=6, watchlisted=2, seed=5)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(len(scene)):
        cv2.imwrite(str(frames / f"{i:05d}.png"), scene.frame(i))
    path = tmp_path / "appliance.toml"
    path.write_text(f"""
[paths]
state_dir = "{tmp_path / 'state'}"
config_dir = "{tmp_path}"
[models]
dir = "{REPO_MODELS_DIR}"
[pipeline]
hub_socket = "{short_dir / 'hub.sock'}"
stats_flush_s = 1.0
[appliance]
link = false
stop_flag = "{tmp_path / 'capture-stopped'}"
[gpio]
pin_factory = "none"
[[cameras]]
name = "door"
source = "replay"
path = "{frames}"
fps = 10.0
""")
    db = open_config_db(load_config(path))
    add_watchlist(db, open_deployment(db), recognizer, watchlist)
    db.close()
    return path


def test_validate_config_only_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[[cameras]]\nname = "door"\nsource = "replay"\npath = "/nowhere"\n')
    assert main(["run", "--validate-config", "--config", str(good)]) == 0
    assert "door" in capsys.readouterr().out
    bad = tmp_path / "bad.toml"
    bad.write_text("[pipeline]\ncooldown_s = -1\n")
    assert main(["run", "--validate-config", "--config", str(bad)]) == 2
    assert "pipeline.cooldown_s" in capsys.readouterr().err
    assert main(["run", "--validate-config", "--config", str(good), "--camera", "rear"]) == 2
    assert "no camera named 'rear'" in capsys.readouterr().err


def test_refuses_without_a_deployment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "a.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{tmp_path}"\n[models]\ndir = "{REPO_MODELS_DIR}"\n'
                   f'[[cameras]]\nname = "door"\nsource = "replay"\npath = "{tmp_path}"\n')
    assert main(["run", "--config", str(cfg), "--frames", "5"]) == 2
    assert "no open deployment" in capsys.readouterr().err
    assert main(["run", "--config", str(cfg), "--camera", "door", "--frames", "5"]) == 2
    assert "no open deployment" in capsys.readouterr().err


@pytest.mark.slow
def test_all_in_one_runs_frames_and_flushes_stats(appliance: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--config", str(appliance), "--frames", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (camera,) = out["cameras"]
    assert camera["camera"] == "door" and camera["frames"] == 20 and camera["error"] is None
    assert camera["counters"]["faces_seen"] >= 1
    db = open_config_db(load_config(appliance))
    stats = read_stats(db, 1)
    db.close()
    assert stats["frames"] == 20 and stats["faces_seen"] == camera["counters"]["faces_seen"]


def _lfr(*argv: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("NOTIFY_SOCKET", None)
    return subprocess.Popen([sys.executable, "-m", "firmware.cli.main", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_hub_and_camera_processes_over_the_unix_socket(appliance: Path, short_dir: Path) -> None:
    hub = _lfr("run", "--config", str(appliance), "--hub-only", "--json")
    try:
        deadline = time.monotonic() + 30
        while not (short_dir / "hub.sock").exists():
            assert hub.poll() is None, hub.communicate()[1]
            assert time.monotonic() < deadline, "hub socket never appeared"
            time.sleep(0.1)
        camera = _lfr("run", "--config", str(appliance), "--camera", "door", "--frames", "20", "--json")
        out, err = camera.communicate(timeout=120)
        assert camera.returncode == 0, err
        assert json.loads(out)["cameras"][0]["frames"] == 20
        time.sleep(1.0)
        hub.send_signal(signal.SIGTERM)
        hub_out, hub_err = hub.communicate(timeout=30)
    finally:
        if hub.poll() is None:
            hub.kill()
    assert hub.returncode == 0, hub_err
    assert json.loads(hub_out)["hub"]["stats_messages"] >= 1
    assert "SIGTERM received" in hub_err
    assert not (short_dir / "hub.sock").exists(), "the hub removes its socket on a clean stop"
    db = open_config_db(load_config(appliance))
    assert read_stats(db, 1)["frames"] == 20
    db.close()
