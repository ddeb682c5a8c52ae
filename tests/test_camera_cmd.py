"""`lfr camera check` reads the configured cameras and says plainly when one delivers nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware.cli.main import main
from tests.conftest import require_data


def write_config(tmp_path: Path, path: Path) -> Path:
    cfg = tmp_path / "lfr.toml"
    cfg.write_text(f'[[cameras]]\nname = "demo"\nsource = "replay"\npath = "{path}"\nfps = 25\n')
    return cfg


def test_check_reports_frames_and_rate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, require_data("video/short_hamilton_clip.mp4"))
    assert main(["camera", "check", "--config", str(cfg), "--seconds", "1", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)["cameras"]
    assert result["camera"] == "demo" and result["size"] == [640, 360] and result["error"] is None
    assert 15 <= result["frames"] <= 30 and 15 <= result["fps"] <= 35  # paced near 25 fps; loose on a busy machine


def test_check_fails_clearly_without_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, tmp_path / "missing")
    assert main(["camera", "check", "--config", str(cfg), "--seconds", "0.5"]) == 2
    captured = capsys.readouterr()
    assert "no frames from camera demo" in captured.err and "does not exist" in captured.out
    assert main(["camera", "check", "--config", str(cfg), "--camera", "nope"]) == 2
    assert "no camera named 'nope'" in capsys.readouterr().err
