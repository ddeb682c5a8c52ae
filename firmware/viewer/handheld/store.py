"""The laptop's record of paired handhelds, what each was sent, and the handheld events for the appliance.

Credentials and one-time pairing tokens are stored only as SHA-256 hashes. Every pairing, revocation,
dispatch and answer is appended to this file's own tamper-evident `audit` table (the appliance's chained
format, `firmware.store.audit`) and kept in `events` until the appliance acknowledges it, so none is lost
when the link is down or the viewer restarts. Alert images are never copied here: a handheld gets them
from the viewer's store while its dispatch is open.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from firmware.errors import StorageError
from firmware.link.messages import HandheldEvent
from firmware.store import audit
from firmware.store.db import Migration, open_db, transaction

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS devices (
        id TEXT PRIMARY KEY,
        callsign TEXT NOT NULL,
        credential_sha256 TEXT NOT NULL UNIQUE,
        paired REAL NOT NULL,
        revoked REAL,
        last_seen REAL
    )""",
    """CREATE TABLE IF NOT EXISTS pairings (
        token_sha256 TEXT PRIMARY KEY,
        callsign TEXT NOT NULL,
        created REAL NOT NULL,
        expires REAL NOT NULL,
        used REAL
    )""",
    # one row per alert sent to one handheld; `seq` grows with every change, the handheld's feed cursor
    """CREATE TABLE IF NOT EXISTS dispatches (
        device_id TEXT NOT NULL REFERENCES devices(id),
        alert_id TEXT NOT NULL,
        deployment TEXT,
        sent REAL NOT NULL,
        expires REAL NOT NULL,
        answer TEXT,
        closed REAL,
        close_reason TEXT,
        seq INTEGER NOT NULL,
        PRIMARY KEY (device_id, alert_id)
    )""",
    """CREATE TABLE IF NOT EXISTS events (
        event_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        device_id TEXT NOT NULL,
        callsign TEXT NOT NULL,
        alert_id TEXT,
        t_wall REAL NOT NULL,
        acked REAL,
        refused TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY, time REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE refused'); END""",
)


def _v1_handhelds(db: sqlite_utils.Database) -> None:
    """Devices, pairings, dispatches, events and the audit log (IF NOT EXISTS: a file from before migrations
    already has them)."""
    for statement in _SCHEMA:
        db.execute(statement)


MIGRATIONS: tuple[Migration, ...] = (_v1_handhelds,)
"""The handheld file's schema, applied by `store.db.open_db`; append only."""


def sha256(secret: str) -> str:
    """Hex SHA-256 of a token or credential: what is stored and compared, never the secret itself."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Device:
    """A paired handheld: `id` (uuid), the officer's `callsign`, pairing and revocation times (Unix s)."""

    id: str
    callsign: str
    paired: float
    revoked: float | None
    last_seen: float | None

    @property
    def is_active(self) -> bool:
        return self.revoked is None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "callsign": self.callsign, "paired": self.paired, "revoked": self.revoked,
                "last_seen": self.last_seen}


class HandheldStore:
    """The handheld sqlite file; one connection shared by the web servers and the link thread, under a lock."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StorageError(f"cannot open the handheld database {self.path}: {exc}") from exc
        try:
            self.db = open_db(self.path, migrations=MIGRATIONS, shared=True)
        except StorageError as exc:
            raise StorageError(f"handheld {exc}") from exc
        self._lock = threading.RLock()
        self._closed = False

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One transaction under the store's lock."""
        with self._lock, transaction(self.db) as db:
            yield db

    def read(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.db.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        """Close the file; safe to call twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.db.close()

    def __enter__(self) -> HandheldStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- devices ---------------------------------------------------------------------------------------

    def device_by_credential(self, credential: str) -> Device | None:
        rows = self.read("SELECT id, callsign, paired, revoked, last_seen FROM devices "
                         "WHERE credential_sha256 = ? AND revoked IS NULL", [sha256(credential)])
        return Device(*rows[0]) if rows else None

    def device(self, device_id: str) -> Device | None:
        rows = self.read("SELECT id, callsign, paired, revoked, last_seen FROM devices WHERE id = ?", [device_id])
        return Device(*rows[0]) if rows else None

    def devices(self, *, active_only: bool = False) -> list[Device]:
        sql = "SELECT id, callsign, paired, revoked, last_seen FROM devices"
        if active_only:
            sql += " WHERE revoked IS NULL"
        return [Device(*r) for r in self.read(sql + " ORDER BY callsign, paired")]

    def next_seq(self, db: sqlite_utils.Database) -> int:
        """The next feed sequence number (inside the caller's transaction)."""
        return int(db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM dispatches").fetchone()[0])

    # -- events for the appliance ----------------------------------------------------------------------

    def add_event(self, db: sqlite_utils.Database, event: HandheldEvent, actor: str) -> None:
        """Keep `event` until acknowledged and audit it here (inside the caller's transaction)."""
        db.execute("INSERT INTO events (event_id, kind, device_id, callsign, alert_id, t_wall) "
                   "VALUES (?,?,?,?,?,?)", [event.event_id, event.kind, event.device_id, event.callsign,
                                            event.alert_id, event.t_wall])
        audit.append(db, time=event.t_wall, actor=actor, action=f"handheld_{event.kind}",
                     details={"event_id": event.event_id, "device_id": event.device_id,
                              "callsign": event.callsign, "alert_id": event.alert_id})

    def unacked_events(self) -> list[HandheldEvent]:
        rows = self.read("SELECT event_id, kind, device_id, callsign, alert_id, t_wall FROM events "
                         "WHERE acked IS NULL ORDER BY t_wall")
        return [HandheldEvent(event_id=r[0], kind=r[1], device_id=r[2], callsign=r[3], alert_id=r[4],
                              t_wall=r[5]) for r in rows]

    def event_acked(self, event_id: str, accepted: bool, reason: str, at: float) -> None:
        with self.write() as db:
            db.execute("UPDATE events SET acked = ?, refused = ? WHERE event_id = ?",
                       [at, None if accepted else (reason or "refused"), event_id])

    def events(self) -> list[dict[str, Any]]:
        cols = ("event_id", "kind", "device_id", "callsign", "alert_id", "t_wall", "acked", "refused")
        return [dict(zip(cols, r, strict=True))
                for r in self.read(f"SELECT {', '.join(cols)} FROM events ORDER BY t_wall")]
