"""Host health read from a fake sysfs tree and a fake `vcgencmd`, with real disk and memory figures."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from firmware.errors import StorageError
from firmware.hardware.health import cpu_temperature, decode_throttled, read_health, throttling


def zone(sysfs: Path, n: int, kind: str, millidegrees: str) -> None:
    path = sysfs / "class" / "thermal" / f"thermal_zone{n}"
    path.mkdir(parents=True)
    (path / "type").write_text(kind + "\n")
    (path / "temp").write_text(millidegrees + "\n")


def fake_vcgencmd(tmp_path: Path, output: str, status: int = 0) -> str:
    exe = tmp_path / "vcgencmd"
    exe.write_text(f"#!/bin/sh\n[ \"$1\" = get_throttled ] || exit 9\necho '{output}'\nexit {status}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


def test_cpu_zone_is_preferred_over_hotter_others(tmp_path: Path) -> None:
    zone(tmp_path, 0, "cpu-thermal", "61234")
    zone(tmp_path, 1, "rp1_adc", "70000")
    assert cpu_temperature(tmp_path) == pytest.approx(61.234)


def test_hottest_zone_without_a_cpu_zone_and_unreadable_zones_skipped(tmp_path: Path) -> None:
    zone(tmp_path, 0, "acpitz", "40000")
    zone(tmp_path, 1, "pch", "52000")
    zone(tmp_path, 2, "broken", "n/a")
    assert cpu_temperature(tmp_path) == pytest.approx(52.0)


def test_no_thermal_zones(tmp_path: Path) -> None:
    assert cpu_temperature(tmp_path) is None


def test_throttle_bits_decoded() -> None:
    t = decode_throttled("throttled=0x50005")
    assert t.raw == 0x50005
    assert t.flags == ("under-voltage", "throttled", "under-voltage occurred", "throttling occurred")
    assert t.is_throttled_now
    past = decode_throttled("throttled=0x80000")
    assert past.flags == ("soft temperature limit occurred",) and not past.is_throttled_now
    assert decode_throttled("throttled=0x0").flags == ()


def test_vcgencmd_is_run_and_absent_or_failing_gives_none(tmp_path: Path) -> None:
    assert throttling(fake_vcgencmd(tmp_path, "throttled=0x20002")).flags == (
        "arm frequency capped", "arm frequency capping occurred")
    assert throttling(str(tmp_path / "missing")) is None
    assert throttling(None) is None
    bad = tmp_path / "bad"
    bad.mkdir()
    assert throttling(fake_vcgencmd(bad, "VCHI initialization failed", status=255)) is None


def test_read_health_of_a_state_dir(tmp_path: Path) -> None:
    sysfs = tmp_path / "sys"
    zone(sysfs, 0, "cpu-thermal", "48500")
    state = tmp_path / "state"
    state.mkdir()
    health = read_health(state, sysfs=sysfs, vcgencmd=fake_vcgencmd(tmp_path, "throttled=0x0"))
    disk = shutil.disk_usage(state)
    assert health.cpu_temp_c == pytest.approx(48.5)
    assert health.throttling is not None and health.throttling.flags == ()
    assert health.disk_total_bytes == disk.total
    assert abs(health.disk_free_bytes - disk.free) < 0.01 * disk.total
    assert 0.0 < health.disk_free_fraction <= 1.0
    assert 0 < health.memory_available_bytes <= health.memory_total_bytes
    data = json.loads(json.dumps(health.as_dict()))
    assert data["schema"] == 1 and data["throttling"]["raw"] == 0
    assert health.summary().startswith("cpu 48.5 °C, not throttled, disk ")


def test_missing_state_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="state directory .*nope does not exist"):
        read_health(tmp_path / "nope", sysfs=tmp_path, vcgencmd=None)
