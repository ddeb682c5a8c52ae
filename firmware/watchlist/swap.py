"""Swapping the open deployment's watchlist for an imported one, in ONE transaction, and rollback protection.

`replace_active` is the only writer of `watchlist_entries` besides the wipe: it deletes the open
deployment's old entries (through `store.deployments.wipe_watchlist`, so the wipe is audited and the old
`watchlists` row marked), inserts the new ones, the `watchlists` row and the audit row, all in ONE
transaction. A reader (the pipeline's `active_version`/`load_active`) sees the old list or the new one.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import sqlite_utils

from firmware.errors import PolicyError, StorageError
from firmware.hardware.clock import Clock
from firmware.store import audit
from firmware.store.db import transaction
from firmware.store.deployments import current, wipe_watchlist
from firmware.store.watchlists import NothingEnrolled, WatchlistRecord, active, latest
from firmware.watchlist.duplicates import DuplicatePair
from firmware.watchlist.errors import Rollback
from firmware.watchlist.importer import ImportResult
from firmware.watchlist.manifest import format_instant

log = logging.getLogger(__name__)


def check_not_rollback(db: sqlite_utils.Database, deployment_id: int, bundle_sha256: str,
                       created_at: float) -> WatchlistRecord | None:
    """Rollback protection (as TUF does for updates): the deployment's active record when this very bundle
    is already its active list (re-importing it changes nothing), else None when the bundle may be loaded.

    Refused (`Rollback`): a bundle this deployment loaded before and has since replaced or wiped, and a bundle
    whose signed `created_at` is not later than that of every list the deployment has loaded. Otherwise an old
    stick (a list headquarters has since shortened) could put a removed subject back on the list.
    """
    rows = db.execute("SELECT bundle_sha256, created_at, wiped_at, wipe_reason FROM watchlists "
                      "WHERE deployment_id = ? ORDER BY id", [deployment_id]).fetchall()
    for sha, _created, wiped_at, reason in rows:
        if sha != bundle_sha256:
            continue
        if wiped_at is None:
            return active(db)
        raise Rollback(f"bundle {bundle_sha256[:16]} was loaded for deployment {deployment_id} before and "
                       f"left it at {format_instant(float(wiped_at))} ({reason}); a list once replaced or "
                       "wiped is never loaded again: ask headquarters for a newly built list")
    newest = max((float(r[1]) for r in rows if r[1] is not None), default=None)
    if newest is not None and created_at <= newest:
        raise Rollback(f"bundle created at {format_instant(created_at)} is not newer than the list created at "
                       f"{format_instant(newest)} that deployment {deployment_id} has already loaded; an older "
                       "list cannot replace a newer one")
    return None


def import_report(result: ImportResult, duplicates: list[DuplicatePair]) -> dict[str, Any]:
    """What is kept of an import: counts, rejected ids with reasons, duplicate id pairs with scores."""
    return {"entries": len(result.entries), "accepted": len(result.accepted),
            "photos_fused": sum(r.photos_fused for r in result.accepted),
            "photos_rejected": result.photos_rejected(),
            "rejected": [{"id": r.entry.id, "reason": r.rejection.value if r.rejection else "",
                          "detail": r.detail} for r in result.rejected],
            "duplicates": [{"id_a": d.id_a, "id_b": d.id_b, "score": round(d.score, 4)} for d in duplicates]}


def replace_active(db: sqlite_utils.Database, deployment_id: int, result: ImportResult,
                   duplicates: list[DuplicatePair], *, clock: Clock, actor: str,
                   operating_point: dict[str, Any] | None = None,
                   models: dict[str, str] | None = None) -> WatchlistRecord:
    """Make `result`'s accepted entries the watchlist of open deployment `deployment_id`, atomically.

    `operating_point` (threshold in force and what it is expected to do, for this list) is stored in the
    import's report and its audit row; the pipeline reads it back with the list (`watchlist.active`).
    `models` (role → model file and sha256 that made the embeddings) goes there too; a camera whose files
    differ does not search the list (`firmware.pipeline.watchlist_watch`).

    Refuses (PolicyError, nothing written) when that deployment is no longer the open one (stopped during
    enrolment) or when no entry was accepted (an empty list would silently stop all matching).
    """
    accepted = result.accepted
    if not accepted:
        raise NothingEnrolled(f"no entry of bundle {result.bundle_sha256[:16]} could be enrolled "
                              f"({len(result.rejected)} rejected); the previous watchlist stays active")
    report = import_report(result, duplicates)
    if operating_point is not None:
        report["operating_point"] = operating_point  # kept with the import and in its audit row
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
        if check_not_rollback(db, dep.id, result.bundle_sha256, m.created_at) is not None:
            raise Rollback(f"bundle {result.bundle_sha256[:16]} was made the active list by another import "
                           "meanwhile; nothing changed")
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
            "valid_from, valid_until, imported_at, accepted, rejected, report, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [dep.id, result.bundle_sha256, result.signer_fingerprint, m.deployment_ref, m.valid_from,
             m.valid_until, now, len(accepted), len(result.rejected), json.dumps(report, sort_keys=True),
             m.created_at])
        watchlist_id = int(cur.lastrowid or 0)
        db.execute("UPDATE stats SET watchlist_size = MAX(watchlist_size, ?) WHERE deployment_id = ?",
                   [len(accepted), dep.id])
        audit.append(db, time=now, actor=actor, action="watchlist_import",
                     details={"deployment_id": dep.id, "watchlist_id": watchlist_id,
                              "bundle_sha256": result.bundle_sha256,
                              "signer_fingerprint": result.signer_fingerprint,
                              "deployment_ref": m.deployment_ref, "authority": dep.authority,
                              "valid_from": m.valid_from, "valid_until": m.valid_until,
                              "created_at": m.created_at,
                              "replaced_bundle": previous.bundle_sha256 if previous else None, **report})
    log.info("watchlist %d active for deployment %d: bundle %s, %d accepted, %d rejected, %d duplicate pairs",
             watchlist_id, deployment_id, result.bundle_sha256[:16], len(accepted), len(result.rejected),
             len(duplicates))
    record = latest(db, deployment_id)
    if record is None or record.id != watchlist_id:
        raise StorageError(f"watchlist {watchlist_id} was committed but another import replaced it at once; "
                           "check `lfr watchlist status`")
    return record
