"""The USB udev rule and the watchlist systemd units parse and point at each other; `systemd-analyze verify`
accepts the units where it is installed (the only complaint allowed is the not-yet-installed /opt/lfr)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
RULE = SYSTEMD / "90-lfr-watchlist-usb.rules"
# KEY{attr}=="value" / KEY+="value": udev's grammar, one rule per line, comma separated
TOKEN = re.compile(r'\s*([A-Z_]+)(\{[A-Za-z_]+\})?\s*(==|!=|\+=|=|:=)\s*"([^"]*)"\s*(,|$)')


def parse_rule(line: str) -> list[tuple[str, str, str]]:
    tokens, pos = [], 0
    while pos < len(line):
        m = TOKEN.match(line, pos)
        assert m, f"cannot parse udev rule at column {pos}: {line[pos:pos + 40]!r}"
        tokens.append((m[1] + (m[2] or ""), m[3], m[4]))
        pos = m.end()
    return tokens


def test_the_usb_rule_matches_usb_partitions_and_wants_the_import_unit() -> None:
    rules = [ln for ln in RULE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(rules) == 1
    tokens = parse_rule(rules[0])
    matches = {k: v for k, op, v in tokens if op == "=="}
    assert matches == {"ACTION": "add", "SUBSYSTEM": "block", "ENV{DEVTYPE}": "partition",
                       "ENV{ID_BUS}": "usb", "ENV{ID_FS_TYPE}": "vfat|exfat"}
    wants = [v for k, op, v in tokens if k == "ENV{SYSTEMD_WANTS}"]
    assert wants == ["lfr-watchlist-import@%k.service"] and ("TAG", "+=", "systemd") in tokens
    assert (SYSTEMD / "lfr-watchlist-import@.service").is_file()


def test_the_import_unit_mounts_read_only_and_unmounts() -> None:
    unit = (SYSTEMD / "lfr-watchlist-import@.service").read_text()
    mount = re.search(r"^ExecStartPre=\+/usr/bin/mount -o (\S+) /dev/%i /run/lfr-usb/%i$", unit, re.MULTILINE)
    assert mount and {"ro", "noexec", "nosuid", "nodev"} <= set(mount[1].split(","))
    assert "ExecStopPost=+-/usr/bin/umount /run/lfr-usb/%i" in unit
    assert "lfr watchlist import /run/lfr-usb/%i" in unit and "User=lfr" in unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("unit", ["lfr-watchlist-expire.service", "lfr-watchlist-expire.timer",
                                  "lfr-watchlist-import@.service"])
def test_systemd_analyze_verify(unit: str, tmp_path: Path) -> None:
    target = tmp_path / unit.replace("@.", "@sda1.")
    shutil.copy(SYSTEMD / unit, target)
    if unit.endswith(".timer"):
        shutil.copy(SYSTEMD / unit.replace(".timer", ".service"), tmp_path)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(target)], capture_output=True,
                          text=True, timeout=60)
    problems = [ln for ln in done.stderr.splitlines()
                if ln.strip() and "/opt/lfr/.venv/bin/lfr is not executable" not in ln]
    assert problems == []
