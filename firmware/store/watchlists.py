"""Imported watchlists: their record, which one is active, and expiry.

The swap itself (`firmware.watchlist.swap.replace_active`, with its rollback check) lives with the import, so
this package never imports the watchlist package (the dependency runs one way: watchlist -> store).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from firmware.errors import PolicyError
from firmware.hardware.clock import Clock
from firmware.store.db import transaction, truncate_wal
from firmware.store.deployments import wipe_watchlist

log = logging.getLogger(__name__)

_COLUMNS = ("id, deployment_id, bundle_sha256, signer_fingerprint, deployment_ref, valid_from, valid_until, "
            "imported_at, accepted, rejected, report, wiped_at, wipe_reason, created_at")


class NothingEnrolled(PolicyError):
    """No entry of the bundle could be enrolled: an empty list would silently stop all matching."""

    code = "nothing_enrolled"
    summary = "no photo could be enrolled"


@dataclass(frozen=True)
class WatchlistRecord:
    """One imported bundle; times are Unix wall seconds; `report` holds ids, reasons and duplicates only."""

    id: int
    deployment_id: int
    bundle_sha256: str
    signer_fingerprint: str
    deployment_ref: str
    valid_from: float
    valid_until: float
    imported_at: float
    accepted: int
    rejected: int
    report: dict[str, Any]
    wiped_at: float | None
    wipe_reason: str | None
    created_at: float | None = None
    """The bundle's signed creation time (None for lists imported before schema version 5)."""

    @property
    def is_active(self) -> bool:
        return self.wiped_at is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(row: tuple[Any, ...]) -> WatchlistRecord:
    return WatchlistRecord(int(row[0]), int(row[1]), row[2], row[3], row[4], float(row[5]), float(row[6]),
                           float(row[7]), int(row[8]), int(row[9]), json.loads(row[10]),
                           None if row[11] is None else float(row[11]), row[12],
                           None if row[13] is None else float(row[13]))


def latest(db: sqlite_utils.Database, deployment_id: int | None = None) -> WatchlistRecord | None:
    """The newest import (of `deployment_id`, else of any deployment), wiped or not; None if none."""
    where, args = ("WHERE deployment_id = ?", [deployment_id]) if deployment_id is not None else ("", [])
    row = db.execute(f"SELECT {_COLUMNS} FROM watchlists {where} ORDER BY id DESC LIMIT 1", args).fetchone()
    return _row(row) if row else None


def active(db: sqlite_utils.Database) -> WatchlistRecord | None:
    """The open deployment's loaded (not wiped) watchlist, or None."""
    row = db.execute(f"SELECT {_COLUMNS} FROM watchlists WHERE wiped_at IS NULL AND deployment_id IN "
                     "(SELECT id FROM deployments WHERE stopped IS NULL) ORDER BY id DESC LIMIT 1").fetchone()
    return _row(row) if row else None


@dataclass(frozen=True)
class ExpireResult:
    """What `expire_if_due` found: the active list (if any), whether it was wiped, and how many entries."""

    watchlist: WatchlistRecord | None
    expired: bool
    entries_wiped: int = 0


def expire_if_due(db: sqlite_utils.Database, *, clock: Clock, actor: str) -> ExpireResult:
    """Wipe the open deployment's watchlist when the clock is at or past its valid-until; else do nothing.

    Cheap when nothing is due (one query, no write), so a timer may run it every minute.
    """
    loaded = active(db)
    if loaded is None or clock.time() < loaded.valid_until:
        return ExpireResult(loaded, False)
    with transaction(db):
        loaded = active(db)  # re-read under the write lock: another process may have wiped it
        if loaded is None:
            return ExpireResult(None, False)
        wiped = wipe_watchlist(db, loaded.deployment_id, clock=clock, actor=actor,
                               reason=f"valid-until passed (bundle {loaded.bundle_sha256})")
    truncate_wal(db)
    log.info("watchlist %d of deployment %d expired: %d entries wiped", loaded.id, loaded.deployment_id,
             wiped)
    return ExpireResult(latest(db, loaded.deployment_id), True, wiped)
