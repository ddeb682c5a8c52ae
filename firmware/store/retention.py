"""Retention: alert images and probe crops are purged a set number of days after capture; facts stay.

Policy caps the period at 30 days; configuration may shorten it, never lengthen it. Purging clears the
JPEG columns of `alerts` and of unacknowledged `outbox` messages, stamps `images_purged_at`, records one
audit row, and truncates the WAL so the images' old pages leave it too.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from firmware.errors import PolicyError
from firmware.hardware.clock import Clock
from firmware.store import audit
from firmware.store.db import transaction, truncate_wal

log = logging.getLogger(__name__)

POLICY_MAX_DAYS = 30
DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class PurgeResult:
    """What one purge did: the cutoff (Unix seconds; images captured before it were purged) and counts."""

    retention_days: int
    cutoff: float
    alerts_purged: int
    outbox_purged: int
    wal_truncated: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def purge(db: sqlite_utils.Database, *, clock: Clock, actor: str,
          retention_days: int = POLICY_MAX_DAYS) -> PurgeResult:
    """Purge images of alerts captured more than `retention_days` (1..30) days before `clock.time()`."""
    if not 1 <= retention_days <= POLICY_MAX_DAYS:
        raise PolicyError(f"retention of {retention_days} days is outside policy (1..{POLICY_MAX_DAYS} days)")
    now = clock.time()
    cutoff = now - retention_days * DAY_SECONDS
    with transaction(db):
        ids = [r[0] for r in db.execute(
            "SELECT id FROM alerts WHERE t_wall < ? AND (probe_jpeg IS NOT NULL "
            "OR reference_jpeg IS NOT NULL OR images_purged_at IS NULL) ORDER BY seq", [cutoff])]
        db.execute("UPDATE alerts SET probe_jpeg = NULL, reference_jpeg = NULL, context_jpeg = NULL, "
                   "images_purged_at = ? "
                   "WHERE t_wall < ? AND (probe_jpeg IS NOT NULL OR reference_jpeg IS NOT NULL "
                   "OR images_purged_at IS NULL)", [now, cutoff])
        outbox = db.execute("UPDATE outbox SET probe_jpeg = NULL, reference_jpeg = NULL, context_jpeg = NULL "
                            "WHERE created < ? AND (probe_jpeg IS NOT NULL OR reference_jpeg IS NOT NULL "
                            "OR context_jpeg IS NOT NULL)", [cutoff]).rowcount
        audit.append(db, time=now, actor=actor, action="purge",
                     details={"retention_days": retention_days, "cutoff": cutoff, "alerts": len(ids),
                              "outbox": outbox, "alert_ids": ids})
    truncated = truncate_wal(db)
    log.info("purged images of %d alerts and %d outbox messages captured before %.0f",
             len(ids), outbox, cutoff)
    return PurgeResult(retention_days, cutoff, len(ids), outbox, truncated)
