"""The active watchlist as a process sees it: reloaded when its version stamp changes, swapped between
frames."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from firmware.hardware.clock import Clock, SystemClock
from firmware.match.score import ScoreCalibration
from firmware.match.watchlist_index import WatchlistIndex
from firmware.store.watchlists import active
from firmware.watchlist.active import Subject, active_operating_point, active_version, load_active

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActiveWatchlist:
    """One immutable loaded watchlist: its version stamp, search index and each subject's alert details."""

    version: str
    index: WatchlistIndex
    subjects: dict[str, Subject]
    operating_point: dict[str, Any] | None = None

    @property
    def threshold_score(self) -> float | None:
        """The 0..1 score threshold the import set for this list (None: use the configured one)."""
        v = (self.operating_point or {}).get("threshold_score")
        return float(v) if isinstance(v, (int, float)) and 0.0 < v < 1.0 else None

    @property
    def single_shot_score(self) -> float | None:
        v = (self.operating_point or {}).get("single_shot_score")
        return float(v) if isinstance(v, (int, float)) and 0.0 < v <= 1.0 else None


class WatchlistWatcher:
    """Checks `active_version` at most every `poll_s` seconds and reloads the index when it changed.

    `current()` returns the loaded watchlist or None (no open deployment, or no entries): the caller must not
    scan then. `db` is this thread's own connection.

    With `models` (the camera's `Recognizer.model_files()`), a list enrolled with other model files is not
    loaded: its embeddings and the camera's would not be comparable. `refused` then says why (for the
    journal and the unit status) until the list is imported again on this appliance.
    """

    def __init__(self, db: sqlite_utils.Database, calibration: ScoreCalibration, *, poll_s: float = 1.0,
                 clock: Clock | None = None, models: dict[str, str] | None = None) -> None:
        self.db = db
        self.calibration = calibration
        self.poll_s = poll_s
        self.clock = clock or SystemClock()
        self._next_check = float("-inf")
        self._active: ActiveWatchlist | None = None
        self.reloads = 0
        self.models = models
        self.refused = ""
        self._refused_version: str | None = None

    def current(self, *, force: bool = False) -> ActiveWatchlist | None:
        now = self.clock.monotonic()
        if force or now >= self._next_check:
            self._next_check = now + self.poll_s
            self._refresh()
        return self._active

    def _refresh(self) -> None:
        version = active_version(self.db)
        if version == (self._active.version if self._active else None) or version == self._refused_version:
            return
        self.refused, self._refused_version = "", None
        if version is None:
            log.info("watchlist unloaded (deployment stopped or wiped): scanning stops")
            self._active = None
            return
        mismatch = self._model_mismatch()
        if mismatch:
            self._active, self.refused, self._refused_version = None, mismatch, version
            log.error("%s", mismatch)
            return
        loaded = load_active(self.db, self.calibration)
        if loaded is None:
            self._active = None
            return
        index, subjects = loaded
        self._active = ActiveWatchlist(index.version, index, subjects, active_operating_point(self.db))
        self.reloads += 1
        log.info("watchlist %s loaded: %d subjects", index.version, len(index))

    def _model_mismatch(self) -> str:
        """Why the active list cannot be searched with this camera's models, or "" when it can."""
        record = active(self.db)
        enrolled = record.report.get("models") if record is not None else None
        if not self.models or not enrolled or enrolled == self.models:
            return ""
        differ = sorted(role for role in set(enrolled) | set(self.models)
                        if enrolled.get(role) != self.models.get(role))
        return (f"watchlist {record.bundle_sha256[:16] if record else '?'} was enrolled with other model files "
                f"({', '.join(f'{r}: {enrolled.get(r)} vs {self.models.get(r)} here' for r in differ)}); "
                "not scanning: import the bundle again on this appliance")
