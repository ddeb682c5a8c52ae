"""Migration 2 adds the `watchlists` table to a database already at version 1, keeping what it holds."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from firmware.store.db import MIGRATIONS, SCHEMA_VERSION, open_db, schema_version


def test_a_version_1_file_gains_the_watchlists_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied REAL)")
    MIGRATIONS[0](sqlite_utils.Database(conn))
    conn.execute("INSERT INTO schema_version VALUES (1, 0)")
    conn.execute("INSERT INTO deployments (authority, officer, location, started, threshold) "
                 "VALUES ('OP-1', 'PC A', 'Here', 1.0, 0.6)")
    conn.close()
    db = open_db(path)
    assert SCHEMA_VERSION >= 2 and schema_version(db) == SCHEMA_VERSION
    assert "watchlists" in db.table_names()
    assert db.execute("SELECT authority FROM deployments").fetchall() == [("OP-1",)]
    with pytest.raises(sqlite3.IntegrityError):  # a record of an import that loaded nothing is refused
        db.execute("INSERT INTO watchlists (deployment_id, bundle_sha256, signer_fingerprint, deployment_ref, "
                   "valid_from, valid_until, imported_at, accepted, rejected, report) "
                   "VALUES (1, ?, 'fp', 'OP-1', 0, 1, 0, 0, 0, '{}')", ["a" * 64])
    db.close()
