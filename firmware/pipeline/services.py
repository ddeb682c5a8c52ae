"""The hub's services around the pipeline, composed: the laptop link, its recorders, the lights, health.

Each part is named after what it does and lives in its own module:
- `LinkRecorders` (recorders.py): the operator's decisions and the handhelds' events, on the link's thread;
- `StatusLights` (status_lights.py): stop button and flag, import notice, the LED pattern and sign relay;
- `HealthReporter` (health_report.py): cameras' fps and silence, the viewer's Health, the disk limit.
`HubServices` wires them to the `Hub` and the `ApplianceLink`: it is both of the hub's sinks (each alert
wakes the link and blinks the lights; previews go to the link, black while capture is stopped), observes
the cameras' stats messages, and does the periodic work in `tick()` on the hub's thread.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

from firmware.config import AppConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import LfrError
from firmware.hardware.clock import Clock, SystemClock
from firmware.hardware.indicators import ApplianceState, Indicators
from firmware.link.appliance_link import ApplianceLink
from firmware.link.messages import Alert, Health, Preview
from firmware.pipeline.health_report import HealthReporter
from firmware.pipeline.hub import Hub
from firmware.pipeline.link_sinks import LinkSinks
from firmware.pipeline.messages import CameraMessage, PreviewFrame
from firmware.pipeline.recorders import LinkRecorders
from firmware.pipeline.status_lights import StatusLights
from firmware.store import outbox
from firmware.store.db import Checkpointer, config_db_path

log = logging.getLogger(__name__)


class ServicesLink(Protocol):
    """What the services need of `ApplianceLink` (tests hand in a recorder)."""

    def notify(self) -> None: ...

    def publish_preview(self, preview: Preview) -> None: ...

    def set_health(self, health: Health) -> None: ...

    def close(self) -> None: ...


class MemoryLink(Protocol):
    """What the services use, when the link has it, for alerts the van cannot write (ApplianceLink)."""

    def keep_unrecorded(self, alert: Alert) -> bool: ...

    def can_take_alerts(self) -> bool: ...


class HubServices:
    """Link, recorders, lights and health around one `Hub`; `tick()` from the hub loop, `close()` at the end."""

    def __init__(self, cfg: AppConfig, hub: Hub, *, recognizers: Sequence[Recognizer] = (),
                 clock: Clock | None = None, indicators: Indicators | None = None,
                 link: ServicesLink | None = None) -> None:
        self.cfg = cfg
        self.hub = hub
        self.clock = clock or SystemClock()
        db_path = config_db_path(cfg)
        self.recorders = LinkRecorders(db_path, clock=self.clock, busy_timeout_ms=cfg.storage.busy_timeout_ms,
                                       autocheckpoint=False)
        self.reporter = HealthReporter(cfg, hub.db, hub.watcher, clock=self.clock, recognizers=recognizers)
        self.lights = StatusLights(cfg, hub.db, clock=self.clock, indicators=indicators)
        self.link: ServicesLink | None = link
        # Checkpoints off the alert path: none of the hub's connections copies the WAL on commit (issue 17)
        hub.db.execute("PRAGMA wal_autocheckpoint = 0")
        self.checkpointer = Checkpointer(db_path, busy_timeout_ms=cfg.storage.busy_timeout_ms)
        if link is None and cfg.appliance.link:
            try:
                self.link = ApplianceLink(
                    cfg.link, outbox.opener(db_path, busy_timeout_ms=cfg.storage.busy_timeout_ms,
                                            autocheckpoint=False),
                    when_decision=self.recorders.record_decision, when_link=self.lights.when_link,
                    when_handheld_event=self.recorders.record_handheld_event)
            except LfrError:
                self.lights.close()  # the pins are not left claimed when the link cannot start
                self.checkpointer.close()
                raise
        self._link_sinks = LinkSinks(self.link) if self.link is not None else None
        self._next_health = self.clock.monotonic()
        hub.alert_sink = self
        hub.preview_sink = self
        hub.keep_probe = lambda: not self.reporter.is_disk_low
        self._held_for_alerts = False  # capture held because neither the disk nor the link can take an alert
        self._closed = False

    # -- sinks and observation (hub thread) --------------------------------------------------------------

    def alert_recorded(self, alert: Alert) -> None:
        """Wake the link (it sends from the outbox) and blink the lights and buzzer."""
        if self._link_sinks is not None:
            self._link_sinks.alert_recorded(alert)
        self.lights.indicators.alert()

    def alert_unrecorded(self, alert: Alert) -> bool:
        """An alert the van could not write: the link sends it from memory (marked not persisted) when it can
        take it; the lights and buzzer signal it like any alert."""
        link = self.link if self.link is not None and hasattr(self.link, "keep_unrecorded") else None
        taken = bool(link is not None and typing_cast_memory(link).keep_unrecorded(alert))
        if taken:
            self.lights.indicators.alert()
        return taken

    def preview(self, frame: PreviewFrame) -> None:
        """Forward a pixelated preview frame, unless capture is stopped (then the viewer's preview is black)."""
        if self._link_sinks is not None and not self.lights.is_paused():
            self._link_sinks.preview(frame)

    def observe(self, msg: CameraMessage) -> None:
        """Note a camera's stats report (fps, drops, alive)."""
        self.reporter.observe(msg)

    # -- periodic work (hub thread) -------------------------------------------------------------------

    def tick(self) -> None:
        """Stop/resume, lights, disk limit, health; call every loop turn (cheap between due times)."""
        for stop in self.lights.take_presses():
            self.set_stopped(stop, actor="stop-button")
        now = self.clock.monotonic()
        self._hold_capture_unless_alerts_can_go()
        self.lights.indicators.show(self.state())
        if now >= self._next_health:
            self._next_health = now + self.cfg.link.health_interval
            self.reporter.alerts_not_recorded = not self.hub.is_recording
            if self.lights.read_import():
                self.lights.indicators.show(self.state())
            self._send_health()

    def can_take_alerts(self) -> bool:
        """True while a new alert would reach the operator: the disk takes it, or the link from memory."""
        if self.hub.is_recording:
            return True
        link = self.link if self.link is not None and hasattr(self.link, "can_take_alerts") else None
        return bool(link is not None and typing_cast_memory(link).can_take_alerts())

    def _hold_capture_unless_alerts_can_go(self) -> None:
        """Stop taking new faces (the capture stop flag) while neither the disk nor the link can take an alert,
        and release that hold, and only that one, when the link can take alerts again. The disk is known to
        take alerts again only when one is written; a hold with the link gone lasts until the link is back
        (or the appliance restarts after the disk was freed): no face is scanned that could alert no one."""
        can = self.can_take_alerts()
        if not can and not self._held_for_alerts and not self.lights.is_paused():
            self._held_for_alerts = True
            self.lights.stop_flag.set(True)
            self.lights.indicators.set_stopped(True)
            log.error("capture HELD: alerts can be neither recorded on the van nor sent to the operator")
        elif can and self._held_for_alerts:
            self._held_for_alerts = False
            self.lights.stop_flag.set(False)
            self.lights.indicators.set_stopped(False)
            log.warning("capture resumed: alerts can be %s again",
                        "recorded" if self.hub.is_recording else "sent to the operator")

    def set_stopped(self, stopped: bool, *, actor: str) -> None:
        """Stop or resume capture in every camera, audited; a stop blacks out the viewer's preview."""
        self._held_for_alerts = False  # the operator's word replaces the automatic hold
        self.lights.set_stopped(stopped, actor=actor)
        if stopped and self.link is not None:
            for name in self.reporter.cameras:
                self.link.publish_preview(black_preview(name, self.clock.time()))
        self.lights.indicators.show(self.state())

    def state(self) -> ApplianceState:
        """The facts the status LED and the sign relay are derived from."""
        return self.lights.state(fault=self.reporter.is_camera_silent() or not self.hub.is_recording,
                                 watchlist_loaded=self.hub.watcher.current() is not None,
                                 has_link=self.link is not None)

    def health(self) -> Health:
        """The viewer's health message now, with the newest watchlist import."""
        return self.reporter.health(self.lights.last_import)

    def _send_health(self) -> None:
        try:
            health = self.reporter.report(self.lights.last_import)
        except LfrError as exc:
            log.error("health not read: %s", exc)
            return
        if self.link is not None:
            self.link.set_health(health)

    def close(self) -> None:
        """Stop the link and release the pins; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self.link is not None:
            self.link.close()
        self.lights.close()
        self.checkpointer.close()


def black_preview(camera: str, t_wall: float, width: int = 640, height: int = 360) -> Preview:
    """A black frame for the viewer while capture is stopped (nothing of the street leaves the van)."""
    ok, jpeg = cv2.imencode(".jpg", np.zeros((height, width, 3), np.uint8))
    return Preview(camera=camera, t_wall=t_wall, width=width, height=height, jpeg=jpeg.tobytes())


def typing_cast_memory(link: object) -> MemoryLink:
    """`link` as the link's memory side (checked with hasattr by the caller)."""
    return typing.cast(MemoryLink, link)
