"""The laptop's record of the deployment's alerts and the operator's decisions (sqlite, WAL).

`keep_alert` is the link's `when_alert` contract: the alert is committed here before the link acknowledges
it, so a restarted viewer passes `last_seq()` and `seen_ids()` to its new link and shows the same history
with nothing twice. Alert images follow the appliance's policy: dropped `retention_days` (at most 30) after
capture by `purge`, run at start and every hour. Preview frames are never written here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from firmware.errors import PolicyError, StorageError
from firmware.hardware.clock import Clock
from firmware.link.messages import OUTCOMES, Alert
from firmware.store.db import Migration, open_db, transaction, truncate_wal

log = logging.getLogger(__name__)

POLICY_MAX_DAYS = 30
DAY_SECONDS = 86400.0
# An alert waits for the operator (`state` pending), its decision is on its way (sending), it is decided, or it
# is archived: its deployment closed before anyone decided it (`archived` set on a pending row).
PAGE_MAX = 500
"""Most history rows one request returns."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS alerts (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        t_wall REAL NOT NULL,
        received REAL NOT NULL,
        camera TEXT NOT NULL,
        track_id INTEGER NOT NULL,
        subject_id TEXT NOT NULL,
        subject_name TEXT NOT NULL,
        category TEXT NOT NULL,
        reason TEXT NOT NULL,
        score REAL NOT NULL,
        probe_jpeg BLOB,
        reference_jpeg BLOB,
        images_purged_at REAL,
        deployment TEXT,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'decided')),
        outcome TEXT CHECK (outcome IS NULL
                            OR outcome IN ('confirmed_stopped', 'confirmed_not_stopped', 'false_alert')),
        note TEXT,
        decision_id TEXT,
        decided_at REAL,
        refusal TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS alerts_t_wall ON alerts (t_wall)",
)


def _v1_alerts(db: sqlite_utils.Database) -> None:
    """The alerts table (IF NOT EXISTS: a file from before migrations already has it)."""
    for statement in _SCHEMA:
        db.execute(statement)


def _v2_archived(db: sqlite_utils.Database) -> None:
    """`archived`: when an undecided alert was closed with its deployment (a file from before migrations may
    have had it added in place already)."""
    if "archived" not in {r[1] for r in db.execute("PRAGMA table_info(alerts)")}:
        db.execute("ALTER TABLE alerts ADD COLUMN archived REAL")


def _v3_context(db: sqlite_utils.Database) -> None:
    """`context_jpeg`: the alert's whole frame at preview size, other faces pixelated on the van (issue 14)."""
    db.execute("ALTER TABLE alerts ADD COLUMN context_jpeg BLOB")


def _v4_persisted(db: sqlite_utils.Database) -> None:
    """`persisted`: 0 for an alert the van could not write (disk full) and sent from memory (issue 13)."""
    db.execute("ALTER TABLE alerts ADD COLUMN persisted INTEGER NOT NULL DEFAULT 1")


MIGRATIONS: tuple[Migration, ...] = (_v1_alerts, _v2_archived, _v3_context, _v4_persisted)
"""The viewer file's schema, applied by `store.db.open_db`; append only."""

_SUMMARY_COLUMNS = ("id", "seq", "t_wall", "received", "camera", "track_id", "subject_id", "subject_name",
                    "category", "reason", "score", "deployment", "state", "outcome", "note", "decided_at",
                    "refusal", "archived", "persisted")
_SUMMARY_SQL = ", ".join(_SUMMARY_COLUMNS) + (", context_jpeg IS NOT NULL AND length(context_jpeg) > 0, "
                                              "probe_jpeg IS NOT NULL AND length(probe_jpeg) > 0, "
                                              "reference_jpeg IS NOT NULL AND length(reference_jpeg) > 0")
IMAGES = {"probe": "probe_jpeg", "reference": "reference_jpeg", "context": "context_jpeg"}
"""The alert's images by the name the routes use."""


@dataclass(frozen=True)
class AlertFilter:
    """History filters; None means any. `outcome` may also be "pending" (not decided yet) or "archived"
    (closed undecided with its deployment); `since`/`until` are capture times (Unix s, until exclusive);
    `min_score` is 0..1."""

    outcome: str | None = None
    camera: str | None = None
    category: str | None = None
    deployment: str | None = None
    since: float | None = None
    until: float | None = None
    min_score: float | None = None

    def __post_init__(self) -> None:
        if self.outcome is not None and self.outcome not in (*OUTCOMES, "pending", "archived"):
            raise PolicyError(f"unknown outcome filter {self.outcome!r}; expected pending, archived or one of "
                              f"{', '.join(OUTCOMES)}")
        if self.min_score is not None and not 0.0 <= self.min_score <= 1.0:
            raise PolicyError(f"score filter {self.min_score} is outside 0..1")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise PolicyError("the history's 'to' time is not after its 'from' time")

    def where(self) -> tuple[str, list[Any]]:
        """The SQL condition (with its parameters) these filters stand for; "1" for none."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.outcome == "pending":
            clauses.append("state != 'decided' AND archived IS NULL")
        elif self.outcome == "archived":
            clauses.append("archived IS NOT NULL")
        elif self.outcome is not None:
            clauses.append("state = 'decided' AND outcome = ?")
            params.append(self.outcome)
        for column in ("camera", "category", "deployment"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        for clause, value in (("t_wall >= ?", self.since), ("t_wall < ?", self.until),
                              ("score >= ?", self.min_score)):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        return (" AND ".join(clauses) or "1"), params


@dataclass(frozen=True)
class ArchiveResult:
    """Closing a deployment on the laptop: undecided alerts archived, and alerts whose names and reference
    photos were removed (the van wipes its watchlist at the same moment)."""

    deployment: str
    archived: list[str]
    names_removed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PurgeResult:
    """One purge: images of alerts captured before `cutoff` (Unix seconds) were dropped."""

    retention_days: int
    cutoff: float
    alerts_purged: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ViewerStore:
    """The viewer's sqlite file; one connection shared by the link thread and the web server, under a lock."""

    def __init__(self, path: Path | str, *, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StorageError(f"cannot open the viewer database {self.path}: {exc}") from exc
        try:
            self._db = open_db(self.path, busy_timeout_ms=busy_timeout_ms, migrations=MIGRATIONS, shared=True)
        except StorageError as exc:
            raise StorageError(f"viewer {exc}") from exc
        self._lock = threading.RLock()
        self._closed = False

    @contextmanager
    def _write(self) -> Iterator[sqlite_utils.Database]:
        with self._lock, transaction(self._db) as db:
            yield db

    def close(self) -> None:
        """Close the file; safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    def __enter__(self) -> ViewerStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the link needs -------------------------------------------------------------------------

    def keep_alert(self, alert: Alert, *, received: float, deployment: str | None) -> bool:
        """Commit `alert` (the link acknowledges it after this returns); False when it was already kept."""
        with self._write() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO alerts (id, seq, t_wall, received, camera, track_id, subject_id, "
                "subject_name, category, reason, score, probe_jpeg, reference_jpeg, deployment, context_jpeg, "
                "persisted) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [alert.alert_id, alert.seq, alert.t_wall, received, alert.camera, alert.track_id,
                 alert.subject_id, alert.subject_name, alert.category, alert.reason, alert.score,
                 alert.probe_jpeg or None, alert.reference_jpeg or None, deployment, alert.context_jpeg or None,
                 int(alert.persisted is not False)])
            return cur.rowcount == 1

    def last_seq(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()[0])

    def seen_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM alerts")]

    # -- decisions ------------------------------------------------------------------------------------

    def decision_sent(self, alert_id: str, decision_id: str, outcome: str, note: str) -> None:
        """The operator decided; the decision is on its way. Refused for unknown or decided alerts."""
        with self._write() as db:
            row = db.execute("SELECT state, outcome, archived FROM alerts WHERE id = ?", [alert_id]).fetchone()
            if row is None:
                raise StorageError(f"no alert {alert_id} on this laptop")
            if row[2] is not None:
                raise PolicyError(f"alert {alert_id} was archived when its deployment closed; it cannot be "
                                  "decided")
            if row[0] != "pending":
                raise PolicyError(f"alert {alert_id} is already {row[0]}"
                                  + (f" as {row[1]}" if row[1] else ""))
            db.execute("UPDATE alerts SET state = 'sending', outcome = ?, note = ?, decision_id = ?, "
                       "refusal = NULL WHERE id = ?", [outcome, note or None, decision_id, alert_id])

    def decision_done(self, alert_id: str, decision_id: str, accepted: bool, reason: str,
                      at: float) -> bool:
        """The appliance recorded (or refused, with `reason`) decision `decision_id`; False if stale."""
        with self._write() as db:
            if accepted:
                cur = db.execute("UPDATE alerts SET state = 'decided', decided_at = ?, refusal = NULL "
                                 "WHERE id = ? AND decision_id = ?", [at, alert_id, decision_id])
            else:
                cur = db.execute("UPDATE alerts SET state = 'pending', outcome = NULL, note = NULL, "
                                 "decision_id = NULL, refusal = ? WHERE id = ? AND decision_id = ?",
                                 [reason or "refused", alert_id, decision_id])
            return cur.rowcount == 1

    def unconfirmed(self) -> list[tuple[str, str, str, str]]:
        """Decisions sent but not yet acknowledged, oldest alert first: (alert_id, decision_id, outcome, note).

        A restarted viewer (or a reopened link) sends them again under the same decision id; the appliance
        records each once, so a decision made just before the laptop went down is not lost or doubled.
        """
        with self._lock:
            return [(r[0], r[1], r[2], r[3] or "") for r in self._db.execute(
                "SELECT id, decision_id, outcome, note FROM alerts WHERE state = 'sending' ORDER BY seq")]

    # -- reading -------------------------------------------------------------------------------------

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        """One alert's facts (no images) as a dict, or None."""
        with self._lock:
            row = self._db.execute(f"SELECT {_SUMMARY_SQL} FROM alerts WHERE id = ?", [alert_id]).fetchone()
        return _summary(row) if row else None

    def alerts(self, where: AlertFilter = AlertFilter(), limit: int = PAGE_MAX,
               offset: int = 0) -> list[dict[str, Any]]:
        """Alerts matching `where`, newest (highest seq) first; one page of at most `limit` from `offset`."""
        if not 1 <= limit <= PAGE_MAX or offset < 0:
            raise PolicyError(f"a history page is 1..{PAGE_MAX} alerts from an offset of 0 or more")
        condition, params = where.where()
        with self._lock:
            rows = self._db.execute(f"SELECT {_SUMMARY_SQL} FROM alerts WHERE {condition} "
                                    "ORDER BY seq DESC LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
        return [_summary(r) for r in rows]

    def count(self, where: AlertFilter = AlertFilter()) -> int:
        """How many alerts match `where` (the history's page count)."""
        condition, params = where.where()
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM alerts WHERE {condition}", params).fetchone()[0])

    def pending_count(self, deployment: str | None = None) -> int:
        """Undecided, unarchived alerts (of `deployment` when given)."""
        return self.count(AlertFilter(outcome="pending", deployment=deployment))

    def image(self, alert_id: str, which: str) -> bytes | None:
        """The alert's `probe`, `reference` or `context` JPEG, or None when unknown or purged."""
        column = IMAGES.get(which)
        if column is None:
            raise StorageError(f"unknown image {which!r}; expected one of {', '.join(IMAGES)}")
        with self._lock:
            row = self._db.execute(f"SELECT {column} FROM alerts WHERE id = ?", [alert_id]).fetchone()
        return bytes(row[0]) if row and row[0] else None

    def counts(self, deployment: str | None = None) -> dict[str, int]:
        """Alerts, pending, archived and each outcome, over `deployment` (None: every alert this laptop holds)."""
        sql = ("SELECT COUNT(*), SUM(state != 'decided' AND archived IS NULL), SUM(archived IS NOT NULL), "
               "SUM(state = 'decided' AND outcome = ?), SUM(state = 'decided' AND outcome = ?), "
               "SUM(state = 'decided' AND outcome = ?) FROM alerts")
        params: list[Any] = list(OUTCOMES)
        if deployment is not None:
            sql += " WHERE deployment = ?"
            params.append(deployment)
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return dict(zip(("alerts", "pending", "archived", *OUTCOMES), (int(v or 0) for v in row), strict=True))

    def counts_by_deployment(self) -> dict[str, dict[str, int]]:
        """`counts` for every deployment this laptop holds alerts of."""
        with self._lock:
            names = [r[0] for r in self._db.execute(
                "SELECT DISTINCT deployment FROM alerts WHERE deployment IS NOT NULL ORDER BY deployment")]
        return {name: self.counts(name) for name in names}

    def choices(self) -> dict[str, list[str]]:
        """Cameras, subject categories and deployments present, for the history filters."""
        with self._lock:
            return {c: [r[0] for r in self._db.execute(
                        f"SELECT DISTINCT {c} FROM alerts WHERE {c} IS NOT NULL ORDER BY {c}")]
                    for c in ("camera", "category", "deployment")}

    # -- deployments -----------------------------------------------------------------------------------

    def close_deployments(self, *, open_now: str | None, at: float) -> ArchiveResult | None:
        """The appliance reports `open_now` (None: none open): close every other deployment on this laptop.

        As on the van when a deployment stops, what identifies its watchlist subjects goes: the subject's name
        and reference photo are removed from every alert of a closed deployment, and its undecided alerts are
        archived (they can no longer be decided). Scores, times, categories, decisions and the probe crops
        (dropped later with the other images, `retention_days` after capture) stay. Returns None when
        nothing changed.
        """
        other = "deployment IS NOT NULL" + (" AND deployment != ?" if open_now is not None else "")
        params: list[Any] = [open_now] if open_now is not None else []
        with self._write() as db:
            rows = db.execute(f"SELECT id, deployment FROM alerts WHERE {other} AND state = 'pending' "
                              "AND archived IS NULL ORDER BY seq", params).fetchall()
            db.execute(f"UPDATE alerts SET archived = ? WHERE {other} AND state = 'pending' AND archived IS NULL",
                       [at, *params])
            names = db.execute(f"UPDATE alerts SET subject_name = '', reference_jpeg = NULL WHERE {other} "
                               "AND (subject_name != '' OR reference_jpeg IS NOT NULL)", params).rowcount
        if not rows and not names:
            return None
        with self._lock:
            truncate_wal(self._db)
        closed = ", ".join(sorted({r[1] for r in rows})) or "closed deployments"
        log.info("laptop closed %s: %d undecided alerts archived, names and reference photos removed from %d",
                 closed, len(rows), names)
        return ArchiveResult(closed, [r[0] for r in rows], names)

    # -- retention -----------------------------------------------------------------------------------

    def purge(self, *, clock: Clock, retention_days: int = POLICY_MAX_DAYS) -> PurgeResult:
        """Drop the images of alerts captured more than `retention_days` (1..30) days ago, and the subject's
        name with them (the van holds no name past its watchlist); scores, times and decisions stay."""
        if not 1 <= retention_days <= POLICY_MAX_DAYS:
            raise PolicyError(f"retention of {retention_days} days is outside policy (1..{POLICY_MAX_DAYS})")
        now = clock.time()
        cutoff = now - retention_days * DAY_SECONDS
        with self._write() as db:
            purged = db.execute("UPDATE alerts SET probe_jpeg = NULL, reference_jpeg = NULL, context_jpeg = NULL, "
                                "subject_name = '', images_purged_at = ? WHERE t_wall < ? AND images_purged_at IS NULL",
                                [now, cutoff]).rowcount
        with self._lock:
            truncate_wal(self._db)
        if purged:
            log.info("viewer purged the images of %d alerts captured before %.0f", purged, cutoff)
        return PurgeResult(retention_days, cutoff, purged)


def _summary(row: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(zip(_SUMMARY_COLUMNS, row, strict=False))
    out["has_context"], out["has_probe"], out["has_reference"] = bool(row[-3]), bool(row[-2]), bool(row[-1])
    out["persisted"] = bool(out.get("persisted", 1))
    if out.pop("archived") is not None:
        out["state"] = "archived"
    return out
