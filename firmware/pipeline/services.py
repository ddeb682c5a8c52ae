"""What the hub runs around the pipeline: the laptop link, decisions, health, GPIO lights and the stop button.

`HubServices` is both of the hub's sinks (each alert wakes the link and blinks the lights; previews go to
the link, black while capture is stopped), observes the cameras' stats messages (fps, drops, silence = fault)
and does its periodic work in `tick()` on the hub's thread: stop/resume from the button (flag file, audit,
black preview), the LED pattern from the appliance state, health to the viewer every `link.health_interval`
and to the journal every `appliance.health_log_s`, and the disk limit for probe crops.

The watchlist import runs in its own process (the USB unit's `lfr watchlist import`); on each health tick the
services read its newest result from the audit log (`watchlist.notice.newest_import`) and show it: on the
status LED for `gpio.import_refused_s` / `gpio.import_accepted_s`, and in every Health to the viewer.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypedDict

import cv2
import numpy as np
import sqlite_utils

from firmware.config import AppConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import LfrError
from firmware.hardware.clock import Clock, SystemClock
from firmware.hardware.gpio import open_indicators
from firmware.hardware.health import read_health
from firmware.hardware.indicators import ApplianceState, Indicators
from firmware.hardware.stop_flag import StopFlag
from firmware.link.appliance_link import ApplianceLink
from firmware.link.messages import Decision, HandheldEvent, Health, Preview
from firmware.pipeline.hub import Hub, RecordedAlert
from firmware.pipeline.link_sinks import LinkSinks
from firmware.pipeline.messages import CameraMessage, PreviewFrame, StatsDelta
from firmware.store import audit, deployments, watchlists
from firmware.store.alerts import record_decision
from firmware.store.db import config_db_path, open_db, transaction
from firmware.store.handheld import record_handheld_event
from firmware.watchlist.notice import ImportNotice, newest_import

log = logging.getLogger(__name__)


class ServicesLink(Protocol):
    """What the services need of `ApplianceLink` (tests hand in a recorder)."""

    def notify(self) -> None: ...

    def publish_preview(self, preview: Preview) -> None: ...

    def set_health(self, health: Health) -> None: ...

    def close(self) -> None: ...


@dataclass
class CameraHealth:
    """What the hub knows of one camera from its stats messages: fps over the last report, drops, silence."""

    fps: float = 0.0
    dropped: int = 0
    last_report: float = 0.0   # monotonic seconds
    last_frames: int = 0


class HubServices:
    """Link, lights, stop button and health around one `Hub`; `tick()` from the hub loop, `close()` at the end."""

    def __init__(self, cfg: AppConfig, hub: Hub, *, recognizers: Sequence[Recognizer] = (),
                 clock: Clock | None = None, indicators: Indicators | None = None,
                 link: ServicesLink | None = None) -> None:
        self.cfg = cfg
        self.hub = hub
        self.db: sqlite_utils.Database = hub.db
        self.clock = clock or SystemClock()
        self.recognizers = tuple(recognizers)
        self.stop_flag = StopFlag(cfg.appliance.stop_flag)
        self._stop_pressed = threading.Event()
        self._resume_pressed = threading.Event()
        self.cameras: dict[str, CameraHealth] = {c.name: CameraHealth(last_report=self.clock.monotonic())
                                                 for c in cfg.cameras}
        self.is_disk_low = False
        self._next_health = self._next_log = self.clock.monotonic()
        self._link_up = False
        self.last_import: ImportNotice | None = None
        self._import_at = 0.0  # monotonic seconds when the last import ended (for the LED window)
        self.indicators = indicators or open_indicators(cfg.gpio, when_stop=self._stop_pressed.set,
                                                        when_resume=self._resume_pressed.set)
        self.indicators.set_stopped(self.stop_flag.path.exists())
        self.link: ServicesLink | None = link
        if link is None and cfg.appliance.link:
            try:
                self.link = ApplianceLink(cfg.link, config_db_path(cfg), when_decision=self.record_decision,
                                          when_link=self._when_link,
                                          when_handheld_event=self.record_handheld_event)
            except LfrError:
                self.indicators.close()  # the pins are not left claimed when the link cannot start
                raise
        hub.alert_sink = self
        hub.preview_sink = self
        hub.keep_probe = lambda: not self.is_disk_low
        self._closed = False

    # -- sinks and observation (hub thread) --------------------------------------------------------------

    def alert_recorded(self, alert: RecordedAlert) -> None:
        """Wake the link (it sends from the outbox) and blink the lights and buzzer."""
        if self.link is not None:
            LinkSinks(self.link).alert_recorded(alert)
        self.indicators.alert()

    def preview(self, frame: PreviewFrame) -> None:
        """Forward a pixelated preview frame, unless capture is stopped (then the viewer's preview is black)."""
        if self.link is not None and not self.is_stopped:
            LinkSinks(self.link).preview(frame)

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

    # -- decisions (link thread) ----------------------------------------------------------------------

    def record_decision(self, decision: Decision) -> None:
        """The operator's decision into the alert row, audit and stats; a resent decision_id is answered.

        Runs on the link's thread with its own connection; LfrError (unknown alert, decided already with
        another decision, database locked) goes back to the viewer as a refusal.
        """
        db = open_db(config_db_path(self.cfg), busy_timeout_ms=self.cfg.storage.busy_timeout_ms,
                     check_integrity=False)
        try:
            if not record_decision(db, decision.alert_id, decision.outcome, clock=self.clock, actor="operator",
                                   note=decision.note, decision_id=decision.decision_id):
                log.info("decision %s on alert %s was recorded before; answered again", decision.decision_id,
                         decision.alert_id)
        finally:
            db.close()

    def record_handheld_event(self, event: HandheldEvent) -> None:
        """A handheld pairing, revocation, dispatch or officer's answer into the audit log (answers also into
        the alert row and stats); a resent event_id is answered. Runs on the link's thread."""
        db = open_db(config_db_path(self.cfg), busy_timeout_ms=self.cfg.storage.busy_timeout_ms,
                     check_integrity=False)
        try:
            if not record_handheld_event(db, event, clock=self.clock, actor=f"handheld:{event.callsign}"):
                log.info("handheld event %s was recorded before; answered again", event.event_id)
        finally:
            db.close()

    def _when_link(self, up: bool) -> None:
        self._link_up = up

    # -- periodic work (hub thread) -------------------------------------------------------------------

    @property
    def is_stopped(self) -> bool:
        return self.stop_flag.is_set()

    def is_paused(self) -> bool:
        """For camera workers in this process: capture stopped by the button."""
        return self.stop_flag.is_set()

    def tick(self) -> None:
        """Stop/resume, lights, disk limit, health; call every loop turn (cheap between due times)."""
        if self._stop_pressed.is_set():
            self._stop_pressed.clear()
            self.set_stopped(True, actor="stop-button")
        if self._resume_pressed.is_set():
            self._resume_pressed.clear()
            self.set_stopped(False, actor="stop-button")
        now = self.clock.monotonic()
        self.indicators.show(self.state())
        if now >= self._next_health:
            self._next_health = now + self.cfg.link.health_interval
            if self._read_import(now):
                self.indicators.show(self.state())
            self._health(now)

    def set_stopped(self, stopped: bool, *, actor: str) -> None:
        """Stop or resume capture in every camera, audited; a stop blacks out the viewer's preview."""
        self.stop_flag.set(stopped)
        self.indicators.set_stopped(stopped)
        with transaction(self.db):
            audit.append(self.db, time=self.clock.time(), actor=actor,
                         action="capture_stopped" if stopped else "capture_resumed", details={})
        log.warning("capture %s by %s", "stopped" if stopped else "resumed", actor)
        if stopped and self.link is not None:
            for name in self.cameras:
                self.link.publish_preview(black_preview(name, self.clock.time()))
        self.indicators.show(self.state())

    def state(self) -> ApplianceState:
        """The facts the status LED and the sign relay are derived from."""
        now = self.clock.monotonic()
        silent = any(now - c.last_report > self.cfg.appliance.camera_silent_s for c in self.cameras.values())
        dep = deployments.current(self.db)
        loaded = self.hub.watcher.current() is not None
        stopped = self.is_stopped
        notice, since = self.last_import, now - self._import_at
        return ApplianceState(starting=False, fault=silent, stopped=stopped, deployment_open=dep is not None,
                              watchlist_loaded=loaded, link_up=self._link_up or self.link is None,
                              scanning=dep is not None and loaded and not stopped and not silent,
                              import_refused=bool(notice and not notice.is_accepted
                                                  and since < self.cfg.gpio.import_refused_s),
                              import_accepted=bool(notice and notice.is_accepted
                                                   and since < self.cfg.gpio.import_accepted_s),
                              import_flagged=bool(notice and notice.is_flagged
                                                  and since < self.cfg.gpio.import_refused_s))

    def _read_import(self, now: float) -> bool:
        """Take up a watchlist import that ended since the last look; True when there was one.

        Its LED window is kept in monotonic time from the moment it ended (by the wall clock, at most the
        window ago), so a later clock step neither stretches nor cuts it.
        """
        try:
            notice = newest_import(self.db, self.last_import.seq if self.last_import else 0)
        except sqlite3.Error as exc:
            log.error("newest watchlist import not read from the audit log: %s", exc)
            return False
        if notice is None:
            return False
        ago = min(max(self.clock.time() - notice.time, 0.0), 86400.0)
        self.last_import, self._import_at = notice, now - ago
        log.log(logging.INFO if notice.is_accepted else logging.WARNING, "watchlist import %.0f s ago: %s",
                ago, notice.describe())
        return True

    def accelerator(self) -> str:
        """Where inference runs, from the cameras' recognizers in this process ("" when in other processes)."""
        notes = sorted({note for r in self.recognizers for note in r.health().values()})
        return "; ".join(notes)[:64] if notes else "in the camera processes"

    def health(self) -> Health:
        """The viewer's health message now."""
        host = read_health(self.cfg.paths.state_dir)
        active = self.hub.watcher.current()
        record = watchlists.active(self.db)
        dep = deployments.current(self.db)
        return Health(t_wall=self.clock.time(),
                      cameras_fps={n: round(c.fps, 2) for n, c in self.cameras.items()},
                      accelerator=self.accelerator(), temperature_c=host.cpu_temp_c,
                      disk_free_mb=host.disk_free_bytes / 1e6,
                      watchlist_size=len(active.subjects) if active else 0,
                      watchlist_expires=record.valid_until if record else None,
                      deployment=f"{dep.authority} at {dep.location}"[:200] if dep else None,
                      **import_fields(self.last_import),
                      **operating_point_fields(active.operating_point if active else None))

    def _health(self, now: float) -> None:
        try:
            health = self.health()
        except LfrError as exc:
            log.error("health not read: %s", exc)
            return
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
        if self.is_disk_low:
            health = replace(health, accelerator=("DISK FULL: no probe crops kept; " + health.accelerator)[:64])
        if self.link is not None:
            self.link.set_health(health)
        if now >= self._next_log:
            self._next_log = now + self.cfg.appliance.health_log_s
            cams = ", ".join(f"{n} {c.fps:.1f} fps {c.dropped} dropped" for n, c in self.cameras.items())
            log.info("health: %s; cameras: %s; accelerator: %s; watchlist %d subject(s); deployment %s%s",
                     read_health(self.cfg.paths.state_dir).summary(), cams, self.accelerator(),
                     health.watchlist_size, health.deployment or "none",
                     "; DISK NEARLY FULL, probe crops not kept" if self.is_disk_low else "")

    def close(self) -> None:
        """Stop the link and release the pins; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.link is not None:
            self.link.close()
        self.indicators.close()


class ImportFields(TypedDict, total=False):
    """The fields Health version 2 added for the newest watchlist import."""

    import_time: float
    import_outcome: str
    import_code: str | None
    import_reason: str | None
    import_accepted: int | None
    import_rejected: int | None
    import_deployment_ref: str | None


class OperatingPointFields(TypedDict, total=False):
    """The fields Health version 3 added for the loaded list's operating point."""

    op_list_size: int | None
    op_templates_per_entry: float | None
    op_threshold_score: float | None
    op_threshold_cosine: float | None
    op_false_alerts_per_10k: float | None
    op_expected_tpir: float | None
    op_warning: str | None


def operating_point_fields(op: dict[str, Any] | None) -> OperatingPointFields:
    """The Health (version 3) fields for the loaded list's operating point; none set when there is none."""
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


def import_fields(notice: ImportNotice | None) -> ImportFields:
    """The Health (version 2) fields for the newest watchlist import; none set when there was none."""
    if notice is None:
        return {}
    return {"import_time": notice.time, "import_outcome": notice.outcome, "import_code": notice.code,
            "import_reason": notice.reason or None, "import_accepted": notice.entries_accepted,
            "import_rejected": notice.entries_rejected, "import_deployment_ref": notice.deployment_ref}


def black_preview(camera: str, t_wall: float, width: int = 640, height: int = 360) -> Preview:
    """A black frame for the viewer while capture is stopped (nothing of the street leaves the van)."""
    ok, jpeg = cv2.imencode(".jpg", np.zeros((height, width, 3), np.uint8))
    return Preview(camera=camera, t_wall=t_wall, width=width, height=height, jpeg=jpeg.tobytes())
