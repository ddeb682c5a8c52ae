"""Opening a SQLite file safely, transactions, and each file's schema as ordered migrations.

`open_db` is the one opener of every SQLite file the project keeps: the appliance's (its `MIGRATIONS` here)
and the laptop's two (the viewer's alerts and the handhelds', each passing its own migrations).

WAL lets the camera processes read while the store process writes; `secure_delete` makes SQLite overwrite
deleted rows with zeros so a wiped watchlist or a purged image does not linger in free pages. Writes go
through `transaction()`, an explicit `BEGIN IMMEDIATE` that nests (inner uses join the caller's
transaction), because sqlite-utils' own write helpers commit on their own and would break atomicity.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from firmware.config import AppConfig
from firmware.errors import LfrError, StorageError

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 5000
CHECKPOINT_INTERVAL_S = 1.0
"""How often a `Checkpointer` copies the WAL into the database file (when anything was written)."""

# One lock per database file for the writers of this process (see `transaction`); the key is the file's path.
_WRITE_LOCKS: dict[str, threading.Lock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


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


def _v6_alert_context(db: sqlite_utils.Database) -> None:
    """Each alert's context frame (the whole frame at preview size, other faces pixelated on the camera),
    kept and purged like the probe crop; the outbox carries it to the laptop (issue 14)."""
    db.execute("ALTER TABLE alerts ADD COLUMN context_jpeg BLOB")
    db.execute("ALTER TABLE outbox ADD COLUMN context_jpeg BLOB")


Migration = Callable[[sqlite_utils.Database], None]

# Append only; a migration never changes once released. Index + 1 is the schema version it produces.
MIGRATIONS: tuple[Migration, ...] = (
    _v1_schema,
    _v2_watchlists,
    _v3_handhelds,
    _v4_audit_action,
    _v5_watchlist_created_at,
    _v6_alert_context,
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


def _write_lock(db: sqlite_utils.Database) -> threading.Lock | None:
    """The lock this process's writers of `db`'s file take in turn; None for an in-memory database."""
    lock: threading.Lock | None = getattr(db, "_lfr_write_lock", None)
    if lock is None:
        path = db_file(db)
        if not path:
            return None
        with _WRITE_LOCKS_GUARD:
            lock = _WRITE_LOCKS.setdefault(path, threading.Lock())
        db._lfr_write_lock = lock  # type: ignore[attr-defined]
    return lock


def _lock_wait_s(conn: sqlite3.Connection) -> float:
    """How long a writer waits for the others of its process: the busy timeout, at least the default."""
    try:
        busy_ms = float(conn.execute("PRAGMA busy_timeout").fetchone()[0])
    except sqlite3.Error:
        busy_ms = 0.0
    return max(busy_ms, DEFAULT_BUSY_TIMEOUT_MS) / 1000


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One atomic write: `BEGIN IMMEDIATE` ... COMMIT, rolled back on any error.

    Nested use joins the caller's transaction, so `audit.append` inside `record_alert` commits or rolls back
    with it. sqlite3 errors come out as StorageError; LfrErrors raised by the caller pass through unchanged.

    Writers in one process (the hub's thread, the link's worker, the decision recorders) queue on a lock per
    database file before `BEGIN IMMEDIATE`: the next one starts the moment the previous commits. Without it
    they meet SQLite's busy handler, which polls by sleeping 1, 2, 5, 10, 15, 20, 25 ... 100 ms, so an alert
    waited up to tens of ms after the lock was already free (issue 17). Other processes still meet the busy
    timeout. If the lock is not had within the busy timeout (at least 5 s), the transaction goes ahead and SQLite
    decides.
    """
    conn = db.conn
    if conn.in_transaction:
        yield db
        return
    lock = _write_lock(db)
    locked = lock.acquire(timeout=_lock_wait_s(conn)) if lock is not None else False
    try:
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
    finally:
        if locked and lock is not None:
            lock.release()


def schema_version(db: sqlite_utils.Database) -> int:
    """The schema version the file is at (0 for an empty file)."""
    row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(db: sqlite_utils.Database, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Apply the `migrations` the file lacks, each in its own transaction; idempotent. Returns the version."""
    if "schema_version" not in db.table_names():
        with transaction(db):
            db.execute("CREATE TABLE IF NOT EXISTS schema_version "
                       "(version INTEGER PRIMARY KEY, applied REAL)")
    latest = len(migrations)
    current = schema_version(db)  # an up-to-date file is only read: opening never waits for a writer
    if current > latest:
        raise StorageError(f"database {db_file(db)} has schema version {current}, newer than this "
                           f"firmware's {latest}; update the firmware")
    for version in range(current + 1, latest + 1):
        with transaction(db):
            if schema_version(db) >= version:  # another process migrated meanwhile
                continue
            migrations[version - 1](db)
            db.execute("INSERT INTO schema_version (version, applied) VALUES (?, ?)",
                       [version, time.time()])
        log.info("database %s migrated to schema version %d", db_file(db), version)
    return latest


def open_db(path: Path | str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, check_integrity: bool = True,
            migrations: Sequence[Migration] = MIGRATIONS, shared: bool = False,
            autocheckpoint: bool = True) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database at `path`; StorageError if locked or corrupt.

    Every connection gets the same guarantees: autocommit outside `transaction()`, WAL (checked),
    `synchronous = NORMAL`, `foreign_keys`, `secure_delete` and a busy timeout. `busy_timeout_ms` is how long
    a write waits for another process's lock before giving up; `check_integrity` runs `PRAGMA quick_check`
    (linear in the file size) so damage is reported at open, not halfway through a command; `migrations`
    is the file's schema (the appliance's by default); `shared` lets several threads use the connection
    under the caller's own lock (the laptop's stores). `autocheckpoint=False` leaves copying the WAL into the
    file to a `Checkpointer` (the hub's connections): otherwise the commit that fills the WAL past 1,000 pages
    does it.
    """
    path = Path(path)
    where = str(path)
    try:
        # autocommit outside `transaction()`; one connection per thread (nesting is per connection)
        conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None,
                               check_same_thread=not shared)
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
        if not autocheckpoint:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        if check_integrity:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise StorageError(f"database {where} is corrupt ({'; '.join(problems)}); "
                                   "move it aside and restore a backup")
        migrate(db, migrations)
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


class Checkpointer:
    """Copies the WAL into the database file every `interval_s` on a thread and connection of its own.

    Why: with SQLite's automatic checkpoint, the commit that fills the WAL past 1,000 pages (every few dozen
    alerts with their JPEGs) copies it all and syncs the file before it returns, and that commit is often an
    alert's (10-40 ms measured under load, issue 17). The hub's connections are opened with
    `autocheckpoint=False` and this thread does the work in the background. PASSIVE: it never waits for
    readers or writers, and writers never wait for it. `close()` runs a last one; safe to call twice.
    """

    def __init__(self, path: Path | str, *, interval_s: float = CHECKPOINT_INTERVAL_S,
                 busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self.interval_s = interval_s
        # shared: the thread checkpoints on this connection, and close() runs the last one from the caller's
        self._db = open_db(self.path, busy_timeout_ms=busy_timeout_ms, check_integrity=False,
                           autocheckpoint=False, shared=True)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="db-checkpoint", daemon=True)
        self._thread.start()

    def checkpoint(self) -> tuple[int, int]:
        """One PASSIVE checkpoint now: (frames in the WAL, frames of it now in the database file)."""
        try:
            with self._lock:
                _, frames, done = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("database %s: checkpoint failed (%s); the WAL is checkpointed at the next turn",
                        self.path, exc)
            return (0, 0)
        return (int(frames), int(done))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.checkpoint()

    def close(self) -> None:
        """Stop the thread after a last checkpoint and close its connection."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout=5)
        self.checkpoint()
        self._db.close()


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
