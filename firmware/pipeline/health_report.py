"""The appliance's health: each camera's fps and silence from its stats, host readings, and the disk limit.

`HealthReporter` watches the cameras' `StatsDelta` messages (fps over the last report, drops; silence for
`appliance.camera_silent_s` is a fault), builds the viewer's `Health` message, and keeps the disk limit: below
`appliance.min_free_mb` free, `is_disk_low` is set (the hub then keeps no probe crop on the van) and every
Health carries `disk_low`. The journal gets one health line every `appliance.health_log_s`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypedDict

import sqlite_utils

from firmware.config import AppConfig
from firmware.embed.recognizer import Recognizer
from firmware.hardware.clock import Clock
from firmware.hardware.health import read_health
from firmware.link.messages import Health
from firmware.pipeline.messages import CameraMessage, StatsDelta
from firmware.pipeline.watchlist_watch import WatchlistWatcher
from firmware.store import deployments, watchlists
from firmware.watchlist.notice import ImportNotice

log = logging.getLogger(__name__)


@dataclass
class CameraHealth:
    """What the hub knows of one camera from its stats messages: fps over the last report, drops, silence."""

    fps: float = 0.0
    dropped: int = 0
    last_report: float = 0.0   # monotonic seconds
    last_frames: int = 0


class HealthReporter:
    """Cameras' fps and silence, the Health message for the viewer, the disk limit and the journal line."""

    def __init__(self, cfg: AppConfig, db: sqlite_utils.Database, watcher: WatchlistWatcher, *, clock: Clock,
                 recognizers: Sequence[Recognizer] = ()) -> None:
        self.cfg = cfg
        self.db = db
        self.watcher = watcher
        self.clock = clock
        self.recognizers = tuple(recognizers)
        self.cameras: dict[str, CameraHealth] = {c.name: CameraHealth(last_report=clock.monotonic())
                                                 for c in cfg.cameras}
        self.is_disk_low = False
        self.alerts_not_recorded = False
        """Set by the services while the hub cannot write alerts (they go to the operator from memory)."""
        self._next_log = clock.monotonic()

    def observe(self, msg: CameraMessage) -> None:
        """Note a camera's stats report: fps since its last report, drops, and that it is alive."""
        if not isinstance(msg, StatsDelta):
            return
        cam = self.cameras.setdefault(msg.camera, CameraHealth())
        now = self.clock.monotonic()
        frames = int(msg.counters.get("frames", 0))
        elapsed = now - cam.last_report
        cam.fps = frames / elapsed if elapsed > 0 and cam.last_report else 0.0
        cam.dropped += int(msg.counters.get("dropped_frames", 0))
        cam.last_report = now

    def is_camera_silent(self) -> bool:
        """True when a camera has sent no stats for `appliance.camera_silent_s` (a fault)."""
        now = self.clock.monotonic()
        return any(now - c.last_report > self.cfg.appliance.camera_silent_s for c in self.cameras.values())

    def accelerator(self) -> str:
        """Where inference runs, from the cameras' recognizers in this process ("" when in other processes)."""
        notes = sorted({note for r in self.recognizers for note in r.health().values()})
        return "; ".join(notes)[:64] if notes else "in the camera processes"

    def health(self, last_import: ImportNotice | None = None) -> Health:
        """The viewer's health message now (`disk_low` as of the last `report`)."""
        host = read_health(self.cfg.paths.state_dir)
        active = self.watcher.current()
        record = watchlists.active(self.db)
        dep = deployments.current(self.db)
        return Health(t_wall=self.clock.time(),
                      cameras_fps={n: round(c.fps, 2) for n, c in self.cameras.items()},
                      accelerator=self.accelerator(), temperature_c=host.cpu_temp_c,
                      disk_free_mb=host.disk_free_bytes / 1e6,
                      watchlist_size=len(active.subjects) if active else 0,
                      watchlist_expires=record.valid_until if record else None,
                      deployment=f"{dep.authority} at {dep.location}"[:200] if dep else None,
                      **import_fields(last_import), disk_low=self.is_disk_low,
                      alerts_not_recorded=self.alerts_not_recorded,
                      **operating_point_fields(active.operating_point if active else None))

    def report(self, last_import: ImportNotice | None = None) -> Health:
        """Health now, with the disk limit taken from it (logged when it changes) and the journal line when
        due; raises LfrError when the database cannot be read."""
        health = self.health(last_import)
        low = (health.disk_free_mb or 0.0) < self.cfg.appliance.min_free_mb
        if low != self.is_disk_low:
            self.is_disk_low = low
            if low:
                log.error("disk nearly full (%.0f MB free, limit %.0f MB): new alerts keep no probe crop on "
                          "the van; the operator still receives it", health.disk_free_mb,
                          self.cfg.appliance.min_free_mb)
            else:
                log.info("disk space back above %.0f MB: probe crops are kept again",
                         self.cfg.appliance.min_free_mb)
            health = replace(health, disk_low=low)
        now = self.clock.monotonic()
        if now >= self._next_log:
            self._next_log = now + self.cfg.appliance.health_log_s
            cams = ", ".join(f"{n} {c.fps:.1f} fps {c.dropped} dropped" for n, c in self.cameras.items())
            log.info("health: %s; cameras: %s; accelerator: %s; watchlist %d subject(s); deployment %s%s",
                     read_health(self.cfg.paths.state_dir).summary(), cams, health.accelerator,
                     health.watchlist_size, health.deployment or "none",
                     ("; DISK NEARLY FULL, probe crops not kept" if self.is_disk_low else "") +
                     ("; ALERTS NOT BEING RECORDED (sent to the operator from memory)"
                      if self.alerts_not_recorded else ""))
        return health


class ImportFields(TypedDict, total=False):
    """The fields Health version 2 added for the newest watchlist import."""

    import_time: float
    import_outcome: str
    import_code: str | None
    import_reason: str | None
    import_accepted: int | None
    import_rejected: int | None
    import_deployment_ref: str | None


def import_fields(notice: ImportNotice | None) -> ImportFields:
    """The Health (version 2) fields for the newest watchlist import; none set when there was none."""
    if notice is None:
        return {}
    return {"import_time": notice.time, "import_outcome": notice.outcome, "import_code": notice.code,
            "import_reason": notice.reason or None, "import_accepted": notice.entries_accepted,
            "import_rejected": notice.entries_rejected, "import_deployment_ref": notice.deployment_ref}


class OperatingPointFields(TypedDict, total=False):
    """The fields Health version 4 added for the loaded list's operating point."""

    op_list_size: int | None
    op_templates_per_entry: float | None
    op_threshold_score: float | None
    op_threshold_cosine: float | None
    op_false_alerts_per_10k: float | None
    op_expected_tpir: float | None
    op_warning: str | None


def operating_point_fields(op: dict[str, Any] | None) -> OperatingPointFields:
    """The Health (version 4) fields for the loaded list's operating point; none set when there is none."""
    if not op:
        return {}

    def num(key: str, lo: float, hi: float) -> float | None:
        v = op.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi else None

    size = op.get("list_size")
    warning = op.get("warning")
    return {"op_list_size": size if isinstance(size, int) and size >= 0 else None,
            "op_templates_per_entry": num("templates_per_entry", 0, 100),
            "op_threshold_score": num("threshold_score", 0, 1), "op_threshold_cosine": num("threshold_cosine", -1, 1),
            "op_false_alerts_per_10k": num("expected_false_alerts_per_10k_tracks", 0, 10_000),
            "op_expected_tpir": num("expected_tpir", 0, 1),
            "op_warning": warning[:500] if isinstance(warning, str) and warning else None}
