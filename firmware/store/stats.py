"""Per-deployment counters kept in memory by the pipeline and flushed as deltas to the `stats` table.

Each camera process counts in its own `StatsCounters` and flushes now and then; flushing adds deltas
(`frames = frames + ?`), so several processes can share one deployment row. Alerts and decisions are not
counted here: `alerts.py` updates those in the same transaction that records them.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlite_utils

from firmware.errors import StorageError
from firmware.hardware.clock import Clock
from firmware.store.db import transaction

# Counters the pipeline owns; column names of the `stats` table.
PIPELINE_COUNTERS: tuple[str, ...] = (
    "frames", "faces_detected", "faces_seen", "embeddings", "dropped_frames")
STATS_COLUMNS: tuple[str, ...] = PIPELINE_COUNTERS + (
    "alerts", "confirmed", "false_alerts", "not_stopped", "pending", "watchlist_size",
    "field_engaged", "field_not_located", "field_arrested", "field_advised", "field_no_action")


class StatsCounters:
    """Thread-safe in-memory counters (`faces_seen` counts tracks, one per person passing)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending = dict.fromkeys(PIPELINE_COUNTERS, 0)
        self._total = dict.fromkeys(PIPELINE_COUNTERS, 0)

    def add(self, name: str, n: int = 1) -> None:
        """Add `n` to counter `name` (one of PIPELINE_COUNTERS)."""
        if name not in self._pending:
            raise KeyError(f"unknown counter {name!r}; known: {', '.join(PIPELINE_COUNTERS)}")
        with self._lock:
            self._pending[name] += n
            self._total[name] += n

    def totals(self) -> dict[str, int]:
        """Everything counted since this object was made (flushed or not)."""
        with self._lock:
            return dict(self._total)

    def flush(self, db: sqlite_utils.Database, deployment_id: int, *, clock: Clock) -> dict[str, int]:
        """Add the unflushed counts to the deployment's stats row; returns the deltas written.

        On a database error the deltas are kept for the next flush, so no count is lost.
        """
        with self._lock:
            deltas = dict(self._pending)
            self._pending = dict.fromkeys(PIPELINE_COUNTERS, 0)
        try:
            with transaction(db):
                sets = ", ".join(f"{c} = {c} + ?" for c in PIPELINE_COUNTERS)
                cur = db.execute(f"UPDATE stats SET {sets}, updated = ? WHERE deployment_id = ?",
                                 [deltas[c] for c in PIPELINE_COUNTERS] + [clock.time(), deployment_id])
                if cur.rowcount == 0:
                    raise StorageError(f"no stats row for deployment {deployment_id}")
        except StorageError:
            with self._lock:
                for name, n in deltas.items():
                    self._pending[name] += n
            raise
        return deltas


def read_stats(db: sqlite_utils.Database, deployment_id: int) -> dict[str, Any]:
    """The deployment's stats row as a dict of STATS_COLUMNS (zeros when it has none)."""
    row = db.execute(f"SELECT {', '.join(STATS_COLUMNS)} FROM stats WHERE deployment_id = ?",
                     [deployment_id]).fetchone()
    return dict(zip(STATS_COLUMNS, row or (0,) * len(STATS_COLUMNS), strict=True))
