"""Host health of the van's computer: CPU temperature, throttling, disk free and memory.

A Pi in a van in summer throttles, and a full disk stops alert images being kept: the viewer shows these
and the journal gets one line a minute. Per-camera fps, the accelerator, watchlist and deployment come from
their own stages; this module reads only the host. Paths and the `vcgencmd` command are injectable so tests
use a fake sysfs tree and a fake command.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from firmware.errors import StorageError

log = logging.getLogger(__name__)

HEALTH_SCHEMA = 1

# Bits of `vcgencmd get_throttled` (Raspberry Pi firmware): now (0-3) and since boot (16-19).
THROTTLE_BITS: dict[int, str] = {
    0: "under-voltage",
    1: "arm frequency capped",
    2: "throttled",
    3: "soft temperature limit",
    16: "under-voltage occurred",
    17: "arm frequency capping occurred",
    18: "throttling occurred",
    19: "soft temperature limit occurred",
}


@dataclass(frozen=True)
class Throttling:
    """Decoded `vcgencmd get_throttled`: the raw bit field and the names of the bits that are set."""

    raw: int
    flags: tuple[str, ...]

    @property
    def is_throttled_now(self) -> bool:
        """Any of the "now" bits (0-3): under-voltage, capping, throttling or soft limit at this moment."""
        return bool(self.raw & 0xF)


@dataclass(frozen=True)
class HostHealth:
    """One reading of the host; None where the board does not offer the figure."""

    cpu_temp_c: float | None
    throttling: Throttling | None
    disk_free_bytes: int
    disk_total_bytes: int
    memory_available_bytes: int
    memory_total_bytes: int
    schema: int = HEALTH_SCHEMA

    @property
    def disk_free_fraction(self) -> float:
        """Free share of the state directory's file system, 0..1."""
        return self.disk_free_bytes / self.disk_total_bytes if self.disk_total_bytes else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data for the health message to the viewer."""
        data = asdict(self)
        data["disk_free_fraction"] = round(self.disk_free_fraction, 4)
        return data

    def summary(self) -> str:
        """One journal line: "cpu 61.2 °C, not throttled, disk 41.0 GB free (82%), memory 3.1 GB free"."""
        temp = f"cpu {self.cpu_temp_c:.1f} °C" if self.cpu_temp_c is not None else "cpu temperature unknown"
        if self.throttling is None:
            throttle = "throttling unknown"
        else:
            throttle = ("throttled: " + ", ".join(self.throttling.flags)) if self.throttling.flags \
                else "not throttled"
        return (f"{temp}, {throttle}, disk {self.disk_free_bytes / 1e9:.1f} GB free "
                f"({self.disk_free_fraction:.0%}), memory {self.memory_available_bytes / 1e9:.1f} GB free")


def cpu_temperature(sysfs: Path = Path("/sys")) -> float | None:
    """CPU temperature in °C from the thermal zones: the zone whose type names the CPU, else the hottest."""
    readings: list[tuple[bool, float]] = []
    for zone in sorted((sysfs / "class" / "thermal").glob("thermal_zone*")):
        try:
            millidegrees = int((zone / "temp").read_text().strip())
        except (OSError, ValueError) as exc:
            log.debug("skipping %s: %s", zone, exc)
            continue
        try:
            kind = (zone / "type").read_text().strip().lower()
        except OSError:
            kind = ""
        readings.append(("cpu" in kind or "soc" in kind, millidegrees / 1000.0))
    if not readings:
        return None
    cpu = [t for is_cpu, t in readings if is_cpu]
    return max(cpu) if cpu else max(t for _, t in readings)


def decode_throttled(text: str) -> Throttling:
    """Parse `vcgencmd get_throttled` output such as "throttled=0x50005"."""
    _, _, value = text.strip().partition("=")
    raw = int(value or text, 16)
    return Throttling(raw, tuple(name for bit, name in THROTTLE_BITS.items() if raw & (1 << bit)))


def throttling(vcgencmd: str | None = "vcgencmd") -> Throttling | None:
    """The firmware's throttling state, or None where `vcgencmd` is absent (not a Pi) or fails."""
    exe = shutil.which(vcgencmd) if vcgencmd else None
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=2.0, check=True)
        return decode_throttled(out.stdout)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        log.warning("cannot read throttling from %s get_throttled: %s", exe, exc)
        return None


def read_health(state_dir: Path | str, *, sysfs: Path = Path("/sys"),
                vcgencmd: str | None = "vcgencmd") -> HostHealth:
    """Read the host's health now; `state_dir` is where the database and alert images live."""
    try:
        disk = shutil.disk_usage(state_dir)
    except FileNotFoundError as exc:
        raise StorageError(f"state directory {state_dir} does not exist (paths.state_dir; install.sh "
                           f"creates /var/lib/lfr)") from exc
    memory = psutil.virtual_memory()
    return HostHealth(cpu_temp_c=cpu_temperature(sysfs), throttling=throttling(vcgencmd),
                      disk_free_bytes=disk.free, disk_total_bytes=disk.total,
                      memory_available_bytes=memory.available, memory_total_bytes=memory.total)
