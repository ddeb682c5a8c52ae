"""Deployments: the authorised window in which the van may scan; stopping one wipes its watchlist.

At most one deployment is open at a time (checked here and by a unique index). `stop` deletes the
deployment's watchlist entries (names, reference images, embeddings) with `secure_delete` on, records the
final stats and truncates the WAL so no copy of the wiped pages stays in it.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from firmware.errors import PolicyError, StorageError
from firmware.hardware.clock import Clock
from firmware.store import audit
from firmware.store.db import transaction, truncate_wal

log = logging.getLogger(__name__)

MAX_FIELD_CHARS = 200


@dataclass(frozen=True)
class Deployment:
    """One authorised deployment; times are Unix wall seconds, `stopped` is None while it is open."""

    id: int
    authority: str
    officer: str
    location: str
    started: float
    stopped: float | None
    threshold: float

    @property
    def is_open(self) -> bool:
        return self.stopped is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StopResult:
    """What `stop` did: the closed deployment, how many watchlist entries it wiped, whether the WAL was
    truncated (False when another process was reading: the pages leave the WAL at its next checkpoint)."""

    deployment: Deployment
    entries_wiped: int
    wal_truncated: bool
    undecided: int = 0
    """Alerts left undecided (archived: they can no longer be decided)."""


_COLUMNS = "id, authority, officer, location, started, stopped, threshold"


def _row(row: tuple[Any, ...]) -> Deployment:
    return Deployment(int(row[0]), row[1], row[2], row[3], float(row[4]),
                      None if row[5] is None else float(row[5]), float(row[6]))


def _clean(label: str, value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise PolicyError(f"a deployment needs {label}")
    if len(value) > MAX_FIELD_CHARS:
        raise PolicyError(f"{label} is {len(value)} characters long; keep it under {MAX_FIELD_CHARS}")
    return value


def current(db: sqlite_utils.Database) -> Deployment | None:
    """The open deployment, or None."""
    row = db.execute(f"SELECT {_COLUMNS} FROM deployments WHERE stopped IS NULL").fetchone()
    return _row(row) if row else None


def get(db: sqlite_utils.Database, deployment_id: int) -> Deployment:
    """The deployment with this id; StorageError naming it when there is none."""
    row = db.execute(f"SELECT {_COLUMNS} FROM deployments WHERE id = ?", [deployment_id]).fetchone()
    if row is None:
        raise StorageError(f"no deployment with id {deployment_id}; `lfr deployment list` shows them")
    return _row(row)


def list_deployments(db: sqlite_utils.Database) -> list[Deployment]:
    """Every deployment, oldest first."""
    return [_row(r) for r in db.execute(f"SELECT {_COLUMNS} FROM deployments ORDER BY id")]


def require_open(db: sqlite_utils.Database) -> Deployment:
    """The open deployment, or PolicyError: nothing is scanned or recorded outside an authorised one."""
    dep = current(db)
    if dep is None:
        raise PolicyError("no open deployment: start one with `lfr deployment start --authority REF "
                          "--officer NAME --location TEXT`")
    return dep


def require_ready_to_scan(db: sqlite_utils.Database) -> Deployment:
    """The open deployment if it also has a watchlist loaded; PolicyError saying what is missing otherwise."""
    dep = require_open(db)
    entries = db.execute("SELECT COUNT(*) FROM watchlist_entries WHERE deployment_id = ?",
                         [dep.id]).fetchone()[0]
    if not entries:
        raise PolicyError(f"deployment {dep.id} has no watchlist loaded: import the day's signed bundle with "
                          "`lfr watchlist import` before scanning")
    return dep


def start(db: sqlite_utils.Database, *, authority: str, officer: str, location: str, threshold: float,
          clock: Clock, actor: str) -> Deployment:
    """Open a deployment under `authority` (the authorisation reference); refuses while another is open.

    `threshold` is the 0..1 alert score threshold in force, recorded for the report.
    """
    authority = _clean("an authority reference", authority)
    officer = _clean("an officer", officer)
    location = _clean("a location", location)
    if not 0.0 < threshold < 1.0:
        raise PolicyError(f"threshold {threshold} is outside 0..1")
    now = clock.time()
    with transaction(db):
        open_dep = current(db)
        if open_dep is not None:
            raise PolicyError(f"deployment {open_dep.id} ({open_dep.location}, authority "
                              f"{open_dep.authority}) is still open; stop it first: `lfr deployment stop`")
        cur = db.execute("INSERT INTO deployments (authority, officer, location, started, threshold) "
                         "VALUES (?, ?, ?, ?, ?)", [authority, officer, location, now, threshold])
        dep_id = int(cur.lastrowid or 0)
        db.execute("INSERT INTO stats (deployment_id, updated) VALUES (?, ?)", [dep_id, now])
        audit.append(db, time=now, actor=actor, action="deployment_start",
                     details={"deployment_id": dep_id, "authority": authority, "officer": officer,
                              "location": location, "threshold": threshold})
    dep = get(db, dep_id)
    log.info("deployment %d started at %s under authority %s", dep.id, location, authority)
    return dep


def wipe_watchlist(db: sqlite_utils.Database, deployment_id: int, *, clock: Clock, actor: str,
                   reason: str) -> int:
    """Delete every watchlist entry of a deployment (names, reference images, embeddings); audited.

    Joins the caller's transaction; returns the number of entries deleted. Call `truncate_wal` after the
    commit so the old pages leave the WAL too.
    """
    with transaction(db):
        count, bundles = db.execute(
            "SELECT COUNT(*), group_concat(DISTINCT bundle_sha256) FROM watchlist_entries "
            "WHERE deployment_id = ?", [deployment_id]).fetchone()
        db.execute("UPDATE stats SET watchlist_size = MAX(watchlist_size, ?) WHERE deployment_id = ?",
                   [count, deployment_id])
        db.execute("DELETE FROM watchlist_entries WHERE deployment_id = ?", [deployment_id])
        now = clock.time()
        db.execute("UPDATE watchlists SET wiped_at = ?, wipe_reason = ? WHERE deployment_id = ? "
                   "AND wiped_at IS NULL", [now, reason, deployment_id])
        audit.append(db, time=now, actor=actor, action="watchlist_wipe",
                     details={"deployment_id": deployment_id, "entries": int(count), "reason": reason,
                              "bundles": sorted((bundles or "").split(",")) if bundles else []})
    return int(count)


def pending_alerts(db: sqlite_utils.Database, deployment_id: int) -> int:
    """Alerts of the deployment nobody has decided yet."""
    return int(db.execute("SELECT COUNT(*) FROM alerts WHERE deployment_id = ? AND state = 'pending'",
                          [deployment_id]).fetchone()[0])


def stop(db: sqlite_utils.Database, *, clock: Clock, actor: str, require_decided: bool = False) -> StopResult:
    """Close the open deployment: wipe its watchlist, write its final stats, audit it, truncate the WAL.

    Its undecided alerts can no longer be decided afterwards (archived); with `require_decided` (the
    operator's command without --force) a deployment with undecided alerts is refused instead.
    """
    now = clock.time()
    with transaction(db):
        dep = require_open(db)
        pending = pending_alerts(db, dep.id)
        if require_decided and pending:
            raise PolicyError(f"deployment {dep.id} still has undecided alerts ({pending}); decide them in the "
                              "viewer first, or stop with --force to archive them undecided")
        wiped = wipe_watchlist(db, dep.id, clock=clock, actor=actor, reason="deployment stopped")
        # the reference photos copied into its alerts are watchlist images too: they go with the list
        db.execute("UPDATE alerts SET reference_jpeg = NULL WHERE deployment_id = ?", [dep.id])
        db.execute("UPDATE deployments SET stopped = ? WHERE id = ?", [now, dep.id])
        db.execute("UPDATE stats SET updated = ? WHERE deployment_id = ?", [now, dep.id])
        final = db.execute("SELECT * FROM stats WHERE deployment_id = ?", [dep.id])
        names = [d[0] for d in final.description]
        stats = dict(zip(names, final.fetchone() or (), strict=False))
        stats.pop("deployment_id", None)
        stats.pop("updated", None)
        audit.append(db, time=now, actor=actor, action="deployment_stop",
                     details={"deployment_id": dep.id, "final_stats": stats, "undecided_archived": pending})
    truncated = truncate_wal(db)
    log.info("deployment %d stopped; %d watchlist entries wiped", dep.id, wiped)
    return StopResult(get(db, dep.id), wiped, truncated, pending)
