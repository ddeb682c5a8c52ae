"""The hub: the one process that writes the database, fed by the camera processes' messages.

It records each alert candidate as an alert (alert + outbox + audit + stats in one transaction, with the
subject's reference image, category and reason from the active watchlist), applies the subject cooldown across
cameras, adds the cameras' counters to the stats table every `stats_flush_s`, keeps stage timings in memory,
and hands recorded alerts and previews to sinks. The ZeroMQ link to the laptop plugs in as those sinks: it
reads the outbox itself, so `alert_recorded` only needs to wake it (`ApplianceLink.notify()`), and
`preview` maps to `ApplianceLink.publish_preview`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import sqlite_utils

from firmware.config import PipelineConfig
from firmware.decide.decider import SubjectCooldown
from firmware.errors import LfrError, PolicyError
from firmware.hardware.clock import Clock, SystemClock
from firmware.link.messages import Alert
from firmware.match.score import ScoreCalibration
from firmware.pipeline.messages import AlertCandidate, CameraMessage, PreviewFrame, StatsDelta
from firmware.pipeline.timing import StageTimings
from firmware.pipeline.watchlist_watch import WatchlistWatcher
from firmware.store import deployments
from firmware.store.alerts import NewAlert, record_alert
from firmware.store.deployments import Deployment
from firmware.store.stats import StatsCounters

log = logging.getLogger(__name__)

class AlertSink(Protocol):
    """Told of every alert after it is persisted (the stored and sent `Alert`, with its seq); must return
    quickly (e.g. wake the link's thread)."""

    def alert_recorded(self, alert: Alert) -> None: ...

    def alert_unrecorded(self, alert: Alert) -> bool:
        """An alert the van could not write (disk full): True when it was taken to be sent from memory."""
        ...


class PreviewSink(Protocol):
    """Given every pixelated preview frame; may drop frames (newest wins)."""

    def preview(self, frame: PreviewFrame) -> None: ...


class NullSink:
    """Discards alerts and previews (no laptop link configured): alerts stay in the outbox."""

    def alert_recorded(self, alert: Alert) -> None:
        """Nothing: the outbox keeps the alert for the link."""

    def alert_unrecorded(self, alert: Alert) -> bool:
        """No link to send it on: the alert is lost (and said so)."""
        return False

    def preview(self, frame: PreviewFrame) -> None:
        """Nothing: previews are only ever shown live."""


@dataclass
class HubTotals:
    """What the hub did since it started."""

    alerts_recorded: int = 0
    alerts_unrecorded: int = 0
    """Alerts the van could not write (disk full) and sent from memory, marked not persisted."""
    alerts_lost: int = 0
    """Alerts neither written nor taken by the link (neither disk nor link could take them)."""
    alerts_refused: int = 0
    alerts_cooled: int = 0
    previews: int = 0
    stats_messages: int = 0
    counters: dict[str, int] = field(default_factory=dict)


class Hub:
    """Handles camera messages on its own database connection; `tick()` now and then, `close()` at the end."""

    def __init__(self, db: sqlite_utils.Database, calibration: ScoreCalibration, cfg: PipelineConfig, *,
                 clock: Clock | None = None, alert_sink: AlertSink | None = None,
                 preview_sink: PreviewSink | None = None, actor: str = "pipeline") -> None:
        self.db = db
        self.cfg = cfg
        self.clock = clock or SystemClock()
        self.alert_sink: AlertSink = alert_sink or NullSink()
        self.preview_sink: PreviewSink = preview_sink or NullSink()
        self.actor = actor
        self.watcher = WatchlistWatcher(db, calibration, poll_s=cfg.watchlist_poll_s, clock=self.clock)
        self.cooldown = SubjectCooldown(cfg.cooldown_s)
        self.counters = StatsCounters()
        self.timings = StageTimings()
        self.totals = HubTotals()
        self._next_flush = self.clock.monotonic() + cfg.stats_flush_s
        self._deployment: Deployment | None = None
        # False while the disk is nearly full: new alerts keep no probe crop on the van (set by services.py)
        self.keep_probe: Callable[[], bool] = lambda: True
        self.not_recorded_since: float | None = None
        """Monotonic time of the first alert that could not be written since the last one that could."""
        self._seq_floor = 0  # highest seq given to an alert kept in memory only: never given again

    def require_ready(self) -> Deployment:
        """The open deployment with its watchlist loaded; PolicyError saying what is missing otherwise."""
        self._deployment = deployments.require_ready_to_scan(self.db)
        self.watcher.current(force=True)
        return self._deployment

    def handle(self, msg: CameraMessage) -> None:
        """Act on one camera message (record an alert, count stats, forward a preview)."""
        if isinstance(msg, AlertCandidate):
            self._alert(msg)
        elif isinstance(msg, StatsDelta):
            self.totals.stats_messages += 1
            for name, n in msg.counters.items():
                self.counters.add(name, int(n))
            self.timings.merge(msg.timings)
        elif isinstance(msg, PreviewFrame):
            self.totals.previews += 1
            self.preview_sink.preview(msg)

    def _alert(self, c: AlertCandidate) -> None:
        active = self.watcher.current()
        if active is None or c.subject_id not in active.subjects:
            active = self.watcher.current(force=True)
        dep = deployments.current(self.db)
        if active is None or dep is None or c.subject_id not in active.subjects:
            self.totals.alerts_refused += 1
            log.warning("alert candidate from camera %s refused: no open deployment or its subject is no "
                        "longer on the active watchlist", c.camera)
            return
        if self.cooldown.is_cooling(c.subject_id, c.t_mono):
            self.totals.alerts_cooled += 1
            log.info("alert candidate from camera %s held back: same subject alerted less than %.0f s ago",
                     c.camera, self.cooldown.cooldown_s)
            return
        subject = active.subjects[c.subject_id]
        new = NewAlert(deployment_id=dep.id, t_wall=c.t_wall, t_mono=c.t_mono, camera=c.camera,
                       track_id=c.track_id, subject_id=c.subject_id, subject_name=subject.name, score=c.score,
                       category=subject.category, reason=subject.reason, probe_jpeg=c.probe_jpeg,
                       reference_jpeg=subject.reference_jpeg, context_jpeg=c.context_jpeg)
        try:
            alert = record_alert(self.db, new, actor=f"{self.actor}:{c.camera}", keep_probe=self.keep_probe(),
                                 min_seq=self._seq_floor + 1)
        except PolicyError as exc:
            self.totals.alerts_refused += 1
            log.error("alert from camera %s not recorded: %s", c.camera, exc)
            return
        except LfrError as exc:  # the disk (or the database) cannot take it: the operator must still see it
            self._keep_in_memory(new, exc)
            return
        if self.not_recorded_since is not None:
            log.warning("alerts are recorded on the van again (alert %s, seq %d)", alert.alert_id, alert.seq)
            self.not_recorded_since = None
        self.cooldown.mark(c.subject_id, c.t_mono)
        self.totals.alerts_recorded += 1
        log.info("alert %s (seq %d) recorded: camera %s, score %.3f", alert.alert_id, alert.seq, c.camera,
                 c.score)
        self.alert_sink.alert_recorded(alert)

    def _keep_in_memory(self, new: NewAlert, exc: LfrError) -> None:
        """An alert the van cannot write: give it the next seq (never reused: later writes start above it)
        and hand it to the link, which sends it from memory marked not persisted."""
        if self.not_recorded_since is None:
            self.not_recorded_since = self.clock.monotonic()
        try:
            stored = int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()[0])
        except (sqlite3.Error, LfrError) as read_exc:  # the floor alone still never repeats a seq
            log.debug("highest stored seq not read: %s", read_exc)
            stored = 0
        self._seq_floor = max(stored, self._seq_floor) + 1
        alert = Alert(alert_id=new.id, seq=self._seq_floor, t_wall=new.t_wall, camera=new.camera,
                      track_id=new.track_id, subject_id=new.subject_id, subject_name=new.subject_name,
                      category=new.category, reason=new.reason, score=new.score, probe_jpeg=new.probe_jpeg or b"",
                      reference_jpeg=new.reference_jpeg or b"", persisted=False)
        if self.alert_sink.alert_unrecorded(alert):
            self.cooldown.mark(new.subject_id, new.t_mono)
            self.totals.alerts_unrecorded += 1
            log.error("alert %s (seq %d) from camera %s NOT RECORDED on the van (%s): sent to the operator from "
                      "memory, marked not persisted", new.id, alert.seq, new.camera, exc)
        else:
            self.totals.alerts_lost += 1
            log.error("alert %s from camera %s LOST: not recorded on the van (%s) and the link cannot take it",
                      new.id, new.camera, exc)

    @property
    def is_recording(self) -> bool:
        """False while alerts cannot be written on the van: from the first failure until an alert is written."""
        return self.not_recorded_since is None

    def tick(self) -> None:
        """Periodic work: notice a new watchlist, flush counters when `stats_flush_s` has passed."""
        self.watcher.current()
        if self.clock.monotonic() >= self._next_flush:
            self.flush()

    def flush(self) -> None:
        """Add the counted deltas to the open deployment's stats row (kept for later if none is open)."""
        self._next_flush = self.clock.monotonic() + self.cfg.stats_flush_s
        dep = deployments.current(self.db)
        if dep is None:
            return
        try:
            deltas = self.counters.flush(self.db, dep.id, clock=self.clock)
        except LfrError as exc:
            log.error("stats not flushed (kept for the next flush): %s", exc)
            return
        if any(deltas.values()):
            log.debug("stats flushed for deployment %d: %s", dep.id, deltas)

    def close(self) -> None:
        """Flush the last counters; safe to call twice."""
        self.flush()
        self.totals.counters = self.counters.totals()
