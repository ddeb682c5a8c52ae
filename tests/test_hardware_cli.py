"""`lfr health` and `lfr lights test` run end to end through `lfr`'s own entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware.cli.hardware_cmd import DEMO_STATES
from firmware.cli.main import main
from firmware.hardware.indicators import MEANING, Pattern, pattern_for


def write_config(tmp_path: Path, gpio: str) -> str:
    state = tmp_path / "state"
    state.mkdir()
    path = tmp_path / "appliance.toml"
    path.write_text(f'[paths]\nstate_dir = "{state}"\n\n[gpio]\n{gpio}\n')
    return str(path)


def test_health_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--json", "--config", write_config(tmp_path, 'pin_factory = "none"')]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == 1 and 0 < data["disk_free_fraction"] <= 1
    assert data["memory_available_bytes"] <= data["memory_total_bytes"]


def test_health_of_a_missing_state_dir_is_a_clear_error(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path / "gone"}"\n')
    assert main(["health", "--config", str(config)]) == 2
    assert "state directory" in capsys.readouterr().err


def test_lights_test_walks_every_pattern_on_a_mock_board(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, 'pin_factory = "mock"\nsign_relay_pin = 22')
    status = main(["lights", "test", "--config", config, "--seconds", "0.01", "--button-wait", "0.05"])
    out = capsys.readouterr().out
    assert status == 1 and "no press seen" in out  # nobody pressed the virtual button
    for meaning in MEANING.values():
        assert meaning in out


def test_lights_test_shows_each_pattern_once() -> None:
    assert set(DEMO_STATES) == set(Pattern)
    for pattern, state in DEMO_STATES.items():
        assert pattern_for(state) is pattern


def test_lights_test_without_gpio_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lights", "test", "--config", write_config(tmp_path, 'pin_factory = "none"')]) == 2
    assert "no lights to test: disabled in config" in capsys.readouterr().err
