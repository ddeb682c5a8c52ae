"""Imported watchlists: swapping the open deployment's list in one transaction, its record, and expiry.

`replace_active` is the only writer of `watchlist_entries` besides the wipe: it deletes the open
deployment's old entries (through `deployments.wipe_watchlist`, so the wipe is audited and the old
`watchlists` row marked), inserts the new ones, the `watchlists` row and the audit row, all in ONE
transaction. A reader (the pipeline's `active_version`/`load_active`) sees the old list or the new one.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import sqlite_utils

from firmware.errors import PolicyError, StorageError
from firmware.hardware.clock import Clock
from firmware.store import audit
from firmware.store.db import transaction, truncate_wal
from firmware.store.deployments import current, wipe_watchlist
from firmware.watchlist.duplicates import DuplicatePair
from firmware.watchlist.importer import ImportResult

log = logging.getLogger(__name__)

_COLUMNS = ("id, deployment_id, bundle_sha256, signer_fingerprint, deployment_ref, valid_from, valid_until, "
            "imported_at, accepted, rejected, report, wiped_at, wipe_reason")


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

    @property
    def is_active(self) -> bool:
        return self.wiped_at is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _row(row: tuple[Any, ...]) -> WatchlistRecord:
    return WatchlistRecord(int(row[0]), int(row[1]), row[2], row[3], row[4], float(row[5]), float(row[6]),
                           float(row[7]), int(row[8]), int(row[9]), json.loads(row[10]),
                           None if row[11] is None else float(row[11]), row[12])


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


def import_report(result: ImportResult, duplicates: list[DuplicatePair]) -> dict[str, Any]:
    """What is kept of an import: counts, rejected ids with reasons, duplicate id pairs with scores."""
    return {"entries": len(result.entries), "accepted": len(result.accepted),
            "rejected": [{"id": r.entry.id, "reason": r.rejection.value if r.rejection else "",
                          "detail": r.detail} for r in result.rejected],
            "duplicates": [{"id_a": d.id_a, "id_b": d.id_b, "score": round(d.score, 4)} for d in duplicates]}


def replace_active(db: sqlite_utils.Database, deployment_id: int, result: ImportResult,
                   duplicates: list[DuplicatePair], *, clock: Clock, actor: str,
                   models: dict[str, str] | None = None) -> WatchlistRecord:
    """Make `result`'s accepted entries the watchlist of open deployment `deployment_id`, atomically.

    `models` (role → model file and sha256 that made the embeddings) goes into the report and the audit row;
    a camera whose files differ does not search the list (`WatchlistWatcher`).

    Refuses (PolicyError, nothing written) when that deployment is no longer the open one (stopped during
    enrolment) or when no entry was accepted (an empty list would silently stop all matching).
    """
    accepted = result.accepted
    if not accepted:
        raise NothingEnrolled(f"no entry of bundle {result.bundle_sha256[:16]} could be enrolled "
                              f"({len(result.rejected)} rejected); the previous watchlist stays active")
    report = import_report(result, duplicates)
    if models:
        report["models"] = dict(models)
    m = result.manifest
    now = clock.time()
    with transaction(db):
        dep = current(db)
        if dep is None or dep.id != deployment_id:
            now_open = f"deployment {dep.id} is open now" if dep else "no deployment is open now"
            raise PolicyError(f"deployment {deployment_id} was stopped during the import ({now_open}); "
                              "nothing was loaded")
        previous = active(db)
        held = db.execute("SELECT COUNT(*) FROM watchlist_entries WHERE deployment_id = ?",
                          [dep.id]).fetchone()[0]
        if previous is not None or held:
            wipe_watchlist(db, dep.id, clock=clock, actor=actor,
                           reason=f"replaced by bundle {result.bundle_sha256}")
        db.conn.executemany(
            "INSERT INTO watchlist_entries (deployment_id, subject_id, name, category, reason, "
            "reference_jpeg, embedding, bundle_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(dep.id, r.entry.id, r.entry.name, r.entry.category, r.entry.reason, r.reference_jpeg,
              np.asarray(r.embedding, dtype="<f4").tobytes(), result.bundle_sha256) for r in accepted])
        cur = db.execute(
            "INSERT INTO watchlists (deployment_id, bundle_sha256, signer_fingerprint, deployment_ref, "
            "valid_from, valid_until, imported_at, accepted, rejected, report) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [dep.id, result.bundle_sha256, result.signer_fingerprint, m.deployment_ref, m.valid_from,
             m.valid_until, now, len(accepted), len(result.rejected), json.dumps(report, sort_keys=True)])
        watchlist_id = int(cur.lastrowid or 0)
        db.execute("UPDATE stats SET watchlist_size = MAX(watchlist_size, ?) WHERE deployment_id = ?",
                   [len(accepted), dep.id])
        audit.append(db, time=now, actor=actor, action="watchlist_import",
                     details={"deployment_id": dep.id, "watchlist_id": watchlist_id,
                              "bundle_sha256": result.bundle_sha256,
                              "signer_fingerprint": result.signer_fingerprint,
                              "deployment_ref": m.deployment_ref, "authority": dep.authority,
                              "valid_from": m.valid_from, "valid_until": m.valid_until,
                              "replaced_bundle": previous.bundle_sha256 if previous else None, **report})
    log.info("watchlist %d active for deployment %d: bundle %s, %d accepted, %d rejected, %d duplicate pairs",
             watchlist_id, deployment_id, result.bundle_sha256[:16], len(accepted), len(result.rejected),
             len(duplicates))
    record = latest(db, deployment_id)
    if record is None or record.id != watchlist_id:
        raise StorageError(f"watchlist {watchlist_id} was committed but another import replaced it at once; "
                           "check `lfr watchlist status`")
    return record


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
