"""The database file: WAL and secure_delete on, idempotent migrations, exact outbox schema, clear errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from firmware.errors import StorageError
from firmware.hardware.clock import FakeClock
from firmware.store import deployments
from firmware.store.db import SCHEMA_VERSION, open_db, schema_version


def test_pragmas_and_tables(tmp_path: Path) -> None:
    db = open_db(tmp_path / "lfr.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA secure_delete").fetchone()[0] == 1
    assert {"deployments", "watchlist_entries", "alerts", "outbox", "audit", "stats",
            "schema_version"} <= set(db.table_names())
    db.close()


def test_outbox_schema_is_the_agreed_one(tmp_path: Path) -> None:
    """The link is built against exactly this table; a changed column breaks it."""
    db = open_db(tmp_path / "lfr.sqlite3")
    cols = [(r[1], r[2], r[3], r[4], r[5]) for r in db.execute("PRAGMA table_info(outbox)")]
    assert cols == [
        ("alert_id", "TEXT", 0, None, 1),
        ("seq", "INTEGER", 1, None, 0),
        ("header", "TEXT", 1, None, 0),
        ("probe_jpeg", "BLOB", 0, None, 0),
        ("reference_jpeg", "BLOB", 0, None, 0),
        ("created", "REAL", 1, None, 0),
        ("attempts", "INTEGER", 1, "0", 0),
        ("last_sent", "REAL", 0, None, 0),
        ("context_jpeg", "BLOB", 0, None, 0),
    ]


def test_migrations_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "lfr.sqlite3"
    db = open_db(path)
    deployments.start(db, authority="A", officer="O", location="L", threshold=0.6, clock=FakeClock(),
                      actor="test")
    db.close()
    db = open_db(path)
    assert schema_version(db) == SCHEMA_VERSION
    assert db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT COUNT(*) FROM deployments").fetchone()[0] == 1
    db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lfr.sqlite3"
    open_db(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version (version, applied) VALUES (?, 0)", [SCHEMA_VERSION + 1])
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="newer than this firmware"):
        open_db(path)


def test_garbage_file_is_named_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "lfr.sqlite3"
    path.write_bytes(b"this is not a database at all" * 200)
    with pytest.raises(StorageError, match="is not a SQLite database or is corrupt") as err:
        open_db(path)
    assert str(path) in str(err.value)


def test_locked_database_names_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "lfr.sqlite3"
    open_db(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        db = open_db(path, busy_timeout_ms=100)
        with pytest.raises(StorageError, match="is locked by another process"):
            deployments.start(db, authority="A", officer="O", location="L", threshold=0.6,
                              clock=FakeClock(), actor="test")
        assert deployments.list_deployments(db) == []
        db.close()
    finally:
        other.rollback()
        other.close()


def test_second_open_deployment_is_refused_by_the_schema_too(tmp_path: Path) -> None:
    """Even a writer that skips deployments.start() cannot open a second deployment."""
    db = open_db(tmp_path / "lfr.sqlite3")
    deployments.start(db, authority="A", officer="O", location="L", threshold=0.6, clock=FakeClock(),
                      actor="test")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO deployments (authority, officer, location, started, threshold) "
                   "VALUES ('B', 'O', 'L', 0, 0.6)")


def test_damaged_pages_are_reported_at_open(tmp_path: Path) -> None:
    """A file with a valid header but damaged pages must fail at open, not halfway through a command."""
    path = tmp_path / "lfr.sqlite3"
    db = open_db(path)
    clock = FakeClock()
    for i in range(30):
        deployments.start(db, authority=f"AUTH-{i}" * 20, officer="O", location="L" * 100, threshold=0.6,
                          clock=clock, actor="test")
        deployments.stop(db, clock=clock, actor="test")
    db.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 4 * page
    data[2 * page:4 * page] = b"\xa5" * (2 * page)  # scribble over two pages past the schema page
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="corrupt"):
        open_db(path)


def test_writers_of_one_process_queue_instead_of_failing_or_sleeping(tmp_path: Path) -> None:
    """Regression (issue 17): two connections of the hub writing at once met SQLite's busy handler, which
    sleeps 1, 2, 5, 10 ... ms between polls, so an alert waited long after the lock was free. With a busy
    timeout of 0 that handler fails at once ("database is locked"); the per-file lock makes them queue."""
    import threading

    from firmware.store.db import transaction

    path = tmp_path / "lfr.sqlite3"
    first = open_db(path)
    first.execute("CREATE TABLE t (n INTEGER)")
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def write(rounds: int = 50) -> None:
        db = open_db(path, busy_timeout_ms=0, check_integrity=False)  # one connection per thread, as the hub
        try:
            start.wait()
            for n in range(rounds):
                with transaction(db):
                    db.execute("INSERT INTO t VALUES (?)", [n])
        except StorageError as exc:
            failures.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert first.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 4 * 50
    first.close()


def test_checkpointer_moves_the_wal_into_the_file_off_the_writers_connection(tmp_path: Path) -> None:
    """With autocheckpoint off, commits only append to the WAL; the Checkpointer copies it into the file."""
    from firmware.store.db import Checkpointer, transaction

    path = tmp_path / "lfr.sqlite3"
    db = open_db(path, autocheckpoint=False)
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    assert open_db(path, check_integrity=False).execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    db.execute("CREATE TABLE blobs (b BLOB)")
    size_before = path.stat().st_size
    for _ in range(40):  # 40 x 64 KiB: far past the 1,000 pages (4 MiB) that would checkpoint on commit
        with transaction(db):
            db.execute("INSERT INTO blobs VALUES (?)", [bytes(64 * 1024)])
    assert path.stat().st_size == size_before  # nothing left the WAL on commit
    keeper = Checkpointer(path, interval_s=60)
    try:
        frames, done = keeper.checkpoint()
        assert frames > 600 and done == frames
        assert path.stat().st_size > 40 * 64 * 1024
    finally:
        keeper.close()
        keeper.close()
    db.close()


def test_checkpointer_thread_checkpoints_on_its_own(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Regression: the Checkpointer opened its connection on the caller's thread and used it on its own, so
    every background turn failed with "SQLite objects created in a thread can only be used in that same
    thread" and the WAL grew until close()."""
    import time

    from firmware.store.db import Checkpointer, transaction

    path = tmp_path / "lfr.sqlite3"
    db = open_db(path, autocheckpoint=False)
    db.execute("CREATE TABLE blobs (b BLOB)")
    for _ in range(20):
        with transaction(db):
            db.execute("INSERT INTO blobs VALUES (?)", [bytes(64 * 1024)])
    size_before = path.stat().st_size
    keeper = Checkpointer(path, interval_s=0.05)
    try:
        deadline = time.monotonic() + 10
        while path.stat().st_size <= 20 * 64 * 1024 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size > size_before + 20 * 64 * 1024 - 4096
        assert "checkpoint failed" not in caplog.text
    finally:
        keeper.close()
    db.close()
