"""The appliance's one SQLite file: opening it safely, transactions, and the schema as ordered migrations.

WAL lets the camera processes read while the store process writes; `secure_delete` makes SQLite overwrite
deleted rows with zeros so a wiped watchlist or a purged image does not linger in free pages. Writes go
through `transaction()`, an explicit `BEGIN IMMEDIATE` that nests (inner uses join the caller's
transaction), because sqlite-utils' own write helpers commit on their own and would break atomicity.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from firmware.config import AppConfig
from firmware.errors import LfrError, StorageError

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 5000


_V1_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE deployments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        authority TEXT NOT NULL CHECK (length(trim(authority)) > 0),
        officer TEXT NOT NULL CHECK (length(trim(officer)) > 0),
        location TEXT NOT NULL CHECK (length(trim(location)) > 0),
        started REAL NOT NULL,
        stopped REAL,
        threshold REAL NOT NULL CHECK (threshold > 0 AND threshold < 1)
    )""",
    # at most one open deployment, enforced by the database as well as by deployments.start()
    """CREATE UNIQUE INDEX deployments_one_open ON deployments ((stopped IS NULL)) WHERE stopped IS NULL""",
    """CREATE TABLE watchlist_entries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment_id INTEGER NOT NULL REFERENCES deployments(id),
        subject_id TEXT NOT NULL,
        name TEXT NOT NULL,
        category TEXT NOT NULL,
        reason TEXT NOT NULL,
        reference_jpeg BLOB NOT NULL,
        embedding BLOB NOT NULL CHECK (length(embedding) > 0 AND length(embedding) % 4 = 0),
        bundle_sha256 TEXT NOT NULL,
        UNIQUE (deployment_id, subject_id)
    )""",
    """CREATE TABLE alerts (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        deployment_id INTEGER NOT NULL REFERENCES deployments(id),
        t_wall REAL NOT NULL,
        t_mono REAL NOT NULL,
        camera TEXT NOT NULL,
        track_id INTEGER NOT NULL,
        subject_id TEXT NOT NULL,
        score REAL NOT NULL CHECK (score >= 0 AND score <= 1),
        probe_jpeg BLOB,
        reference_jpeg BLOB,
        category TEXT NOT NULL,
        reason TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'decided')),
        decision TEXT CHECK (decision IS NULL
                             OR decision IN ('confirmed_stopped', 'confirmed_not_stopped', 'false_alert')),
        decision_note TEXT,
        decided_at REAL,
        images_purged_at REAL
    )""",
    """CREATE INDEX alerts_deployment ON alerts (deployment_id)""",
    """CREATE INDEX alerts_t_wall ON alerts (t_wall)""",
    """CREATE TABLE outbox (
        alert_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        header TEXT NOT NULL,
        probe_jpeg BLOB,
        reference_jpeg BLOB,
        created REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_sent REAL
    )""",
    """CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        details TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only: DELETE refused'); END""",
    """CREATE TABLE stats (
        deployment_id INTEGER PRIMARY KEY REFERENCES deployments(id),
        frames INTEGER NOT NULL DEFAULT 0,
        faces_detected INTEGER NOT NULL DEFAULT 0,
        faces_seen INTEGER NOT NULL DEFAULT 0,
        embeddings INTEGER NOT NULL DEFAULT 0,
        dropped_frames INTEGER NOT NULL DEFAULT 0,
        alerts INTEGER NOT NULL DEFAULT 0,
        confirmed INTEGER NOT NULL DEFAULT 0,
        false_alerts INTEGER NOT NULL DEFAULT 0,
        not_stopped INTEGER NOT NULL DEFAULT 0,
        pending INTEGER NOT NULL DEFAULT 0,
        watchlist_size INTEGER NOT NULL DEFAULT 0,
        updated REAL
    )""",
)


def _v1_schema(db: sqlite_utils.Database) -> None:
    """Deployments, watchlist, alerts, outbox, audit and stats (DESIGN.md section 3)."""
    for statement in _V1_SCHEMA:
        db.execute(statement)


_V2_WATCHLISTS: tuple[str, ...] = (
    # one row per imported bundle: what was loaded, signed by whom, and the per-entry report (ids and
    # reasons only: names, images and embeddings live in watchlist_entries and are wiped with them)
    """CREATE TABLE watchlists (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment_id INTEGER NOT NULL REFERENCES deployments(id),
        bundle_sha256 TEXT NOT NULL CHECK (length(bundle_sha256) = 64),
        signer_fingerprint TEXT NOT NULL,
        deployment_ref TEXT NOT NULL,
        valid_from REAL NOT NULL,
        valid_until REAL NOT NULL CHECK (valid_until > valid_from),
        imported_at REAL NOT NULL,
        accepted INTEGER NOT NULL CHECK (accepted > 0),
        rejected INTEGER NOT NULL CHECK (rejected >= 0),
        report TEXT NOT NULL,
        wiped_at REAL,
        wipe_reason TEXT
    )""",
    """CREATE INDEX watchlists_deployment ON watchlists (deployment_id)""",
)


def _v2_watchlists(db: sqlite_utils.Database) -> None:
    """The `watchlists` table: one row per imported bundle (issue 5)."""
    for statement in _V2_WATCHLISTS:
        db.execute(statement)


_V3_HANDHELDS: tuple[str, ...] = (
    # officers' handhelds (issue 8): what the field reported on an alert, per deployment counts, and every
    # handheld event once (the link may deliver one again after a restart)
    "ALTER TABLE alerts ADD COLUMN field_status TEXT CHECK (field_status IS NULL "
    "OR field_status IN ('engaged', 'not_located'))",
    "ALTER TABLE alerts ADD COLUMN field_outcome TEXT CHECK (field_outcome IS NULL "
    "OR field_outcome IN ('arrested', 'advised', 'no_action'))",
    "ALTER TABLE alerts ADD COLUMN field_callsign TEXT",
    "ALTER TABLE alerts ADD COLUMN field_updated REAL",
    *(f"ALTER TABLE stats ADD COLUMN field_{k} INTEGER NOT NULL DEFAULT 0"
      for k in ("engaged", "not_located", "arrested", "advised", "no_action")),
    """CREATE TABLE handheld_events (
        event_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        device_id TEXT NOT NULL,
        callsign TEXT NOT NULL,
        alert_id TEXT,
        t_wall REAL NOT NULL,
        recorded REAL NOT NULL
    )""",
    """CREATE INDEX handheld_events_alert ON handheld_events (alert_id, kind)""",
)


def _v3_handhelds(db: sqlite_utils.Database) -> None:
    """Officers' handheld answers on the alert row and in stats; the `handheld_events` table (issue 8)."""
    for statement in _V3_HANDHELDS:
        db.execute(statement)


def _v4_audit_action(db: sqlite_utils.Database) -> None:
    """Index the audit log by action, so the appliance finds the newest watchlist import on every health tick
    with one index probe instead of a scan of the whole log (issue 5)."""
    db.execute("CREATE INDEX audit_action ON audit (action)")


def _v5_watchlist_created_at(db: sqlite_utils.Database) -> None:
    """Each imported bundle's signed `created_at`, so an older list cannot be loaded over a newer one
    (rollback protection, issue 13); rows from before this migration keep NULL and are compared by sha256."""
    db.execute("ALTER TABLE watchlists ADD COLUMN created_at REAL")


# Append only; a migration never changes once released. Index + 1 is the schema version it produces.
MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _v1_schema,
    _v2_watchlists,
    _v3_handhelds,
    _v4_audit_action,
    _v5_watchlist_created_at,
)
SCHEMA_VERSION = len(MIGRATIONS)


def db_file(db: sqlite_utils.Database) -> str:
    """The file behind `db` (empty for an in-memory database), for error messages."""
    try:
        row = db.conn.execute("PRAGMA database_list").fetchone()
    except sqlite3.Error:
        return "(unreadable)"
    return str(row[2]) if row else ""


def _storage_error(exc: sqlite3.Error, where: str) -> StorageError:
    """Turn an sqlite3 error into one a user can act on."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StorageError(f"database {where} is locked by another process ({text}); "
                            "wait for it to finish or stop the other lfr process")
    if isinstance(exc, sqlite3.IntegrityError):
        return StorageError(f"database {where} refused the write: {text}")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StorageError(f"database {where} is not a SQLite database or is corrupt ({text}); "
                            "move it aside and restore a backup")
    return StorageError(f"database {where}: {text}")


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One atomic write: `BEGIN IMMEDIATE` ... COMMIT, rolled back on any error.

    Nested use joins the caller's transaction, so `audit.append` inside `record_alert` commits or rolls back
    with it. sqlite3 errors come out as StorageError; LfrErrors raised by the caller pass through unchanged.
    """
    conn = db.conn
    if conn.in_transaction:
        yield db
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise _storage_error(exc, db_file(db)) from exc
    try:
        yield db
    except BaseException as exc:
        conn.rollback()
        if isinstance(exc, sqlite3.Error):
            raise _storage_error(exc, db_file(db)) from exc
        raise
    try:
        conn.commit()
    except sqlite3.Error as exc:
        conn.rollback()
        raise _storage_error(exc, db_file(db)) from exc


def schema_version(db: sqlite_utils.Database) -> int:
    """The schema version the file is at (0 for an empty file)."""
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite_utils.Database) -> int:
    """Apply the migrations the file lacks, each in its own transaction; idempotent. Returns the version."""
    if "schema_version" not in db.table_names():
        with transaction(db):
            db.execute("CREATE TABLE IF NOT EXISTS schema_version "
                       "(version INTEGER PRIMARY KEY, applied REAL)")
    current = schema_version(db)  # an up-to-date file is only read: opening never waits for a writer
    if current > SCHEMA_VERSION:
        raise StorageError(f"database {db_file(db)} has schema version {current}, newer than this "
                           f"firmware's {SCHEMA_VERSION}; update the firmware")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        with transaction(db):
            if schema_version(db) >= version:  # another process migrated meanwhile
                continue
            MIGRATIONS[version - 1](db)
            db.execute("INSERT INTO schema_version (version, applied) VALUES (?, ?)",
                       [version, time.time()])
        log.info("database %s migrated to schema version %d", db_file(db), version)
    return SCHEMA_VERSION


def open_db(path: Path | str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
            check_integrity: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database at `path`; StorageError if locked or corrupt.

    `busy_timeout_ms` is how long a write waits for another process's lock before giving up;
    `check_integrity` runs `PRAGMA quick_check` (linear in the file size) so damage is reported at open,
    not halfway through a command.
    """
    path = Path(path)
    where = str(path)
    try:
        # autocommit outside `transaction()`; one connection per thread (nesting is per connection)
        conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {where}: {exc}") from exc
    db = sqlite_utils.Database(conn)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StorageError(f"database {where} could not switch to WAL mode (it is in {mode} mode)")
        conn.execute("PRAGMA synchronous = NORMAL")
        if check_integrity:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise StorageError(f"database {where} is corrupt ({'; '.join(problems)}); "
                                   "move it aside and restore a backup")
        migrate(db)
    except sqlite3.Error as exc:
        conn.close()
        raise _storage_error(exc, where) from exc
    except LfrError:
        conn.close()
        raise
    return db


def truncate_wal(db: sqlite_utils.Database) -> bool:
    """Checkpoint and truncate the WAL so deleted rows' old pages leave it; False if a reader blocked it."""
    try:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        raise _storage_error(exc, db_file(db)) from exc
    if busy:
        log.warning("database %s: WAL not truncated, another connection is reading; "
                    "old pages stay in the WAL until the next checkpoint", db_file(db))
    return not busy


def config_db_path(cfg: AppConfig) -> Path:
    """Where the configured database lives: `paths.state_dir` / `storage.db_file`."""
    return Path(cfg.paths.state_dir) / cfg.storage.db_file


def open_config_db(cfg: AppConfig) -> sqlite_utils.Database:
    """Open the configured database, creating `paths.state_dir` (mode 0700) when missing."""
    path = config_db_path(cfg)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StorageError(f"cannot create state directory {path.parent}: {exc}") from exc
    return open_db(path, busy_timeout_ms=cfg.storage.busy_timeout_ms)
