"""The facts the status LED, buzzer and sign relay show, and the stop button that acts on capture.

`StatusLights` owns the indicators (GPIO or a stand-in), the stop flag file every camera process reads, and
the newest watchlist import's result. The import runs in its own process (the USB unit's `lfr watchlist
import`); `read_import` takes its newest result from the audit log (`watchlist.notice.newest_import`) and the
LED shows it for `gpio.import_refused_s` / `gpio.import_accepted_s`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

import sqlite_utils

from firmware.config import AppConfig
from firmware.hardware.clock import Clock
from firmware.hardware.gpio import open_indicators
from firmware.hardware.indicators import ApplianceState, Indicators
from firmware.hardware.stop_flag import StopFlag
from firmware.store import audit, deployments
from firmware.store.db import transaction
from firmware.watchlist.notice import ImportNotice, newest_import

log = logging.getLogger(__name__)


class StatusLights:
    """Stop button, stop flag, link state and import notice in; LED pattern, buzzer and sign relay out."""

    def __init__(self, cfg: AppConfig, db: sqlite_utils.Database, *, clock: Clock,
                 indicators: Indicators | None = None) -> None:
        self.cfg = cfg
        self.db = db
        self.clock = clock
        self.stop_flag = StopFlag(cfg.appliance.stop_flag, clock=clock)
        self.stop_pressed = threading.Event()
        self.resume_pressed = threading.Event()
        self.is_link_up = False
        self.last_import: ImportNotice | None = None
        self._import_at = 0.0  # monotonic seconds when the last import ended (for the LED window)
        self.indicators = indicators or open_indicators(cfg.gpio, when_stop=self.stop_pressed.set,
                                                        when_resume=self.resume_pressed.set, clock=clock)
        self.indicators.set_stopped(self.stop_flag.path.exists())

    def when_link(self, up: bool) -> None:
        """The link's `when_link`: the viewer is connected (True) or gone (False)."""
        self.is_link_up = up

    def is_paused(self) -> bool:
        """Capture stopped by the button (the camera workers in this process skip their frames)."""
        return self.stop_flag.is_set()

    def take_presses(self) -> list[bool]:
        """The stop (True) and resume (False) button presses since the last look, stop first."""
        pressed = []
        for event, stop in ((self.stop_pressed, True), (self.resume_pressed, False)):
            if event.is_set():
                event.clear()
                pressed.append(stop)
        return pressed

    def set_stopped(self, stopped: bool, *, actor: str) -> None:
        """Stop or resume capture in every camera (the flag file), audited."""
        self.stop_flag.set(stopped)
        self.indicators.set_stopped(stopped)
        with transaction(self.db):
            audit.append(self.db, time=self.clock.time(), actor=actor,
                         action="capture_stopped" if stopped else "capture_resumed", details={})
        log.warning("capture %s by %s", "stopped" if stopped else "resumed", actor)

    def state(self, *, fault: bool, watchlist_loaded: bool, has_link: bool) -> ApplianceState:
        """The facts the status LED and the sign relay are derived from."""
        now = self.clock.monotonic()
        dep = deployments.current(self.db)
        stopped = self.is_paused()
        notice, since = self.last_import, now - self._import_at
        return ApplianceState(starting=False, fault=fault, stopped=stopped, deployment_open=dep is not None,
                              watchlist_loaded=watchlist_loaded, link_up=self.is_link_up or not has_link,
                              scanning=dep is not None and watchlist_loaded and not stopped and not fault,
                              import_refused=bool(notice and not notice.is_accepted
                                                  and since < self.cfg.gpio.import_refused_s),
                              import_accepted=bool(notice and notice.is_accepted
                                                   and since < self.cfg.gpio.import_accepted_s),
                              import_flagged=bool(notice and notice.is_flagged
                                                  and since < self.cfg.gpio.import_refused_s))

    def read_import(self) -> bool:
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
        self.last_import, self._import_at = notice, self.clock.monotonic() - ago
        log.log(logging.INFO if notice.is_accepted else logging.WARNING, "watchlist import %.0f s ago: %s",
                ago, notice.describe())
        return True

    def close(self) -> None:
        """Release the pins."""
        self.indicators.close()
