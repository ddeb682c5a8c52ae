"""The audit chain: edits, deletions and insertions are detected and the first broken row is named."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import sqlite_utils

from firmware.errors import AuditError, StorageError
from firmware.store import audit
from firmware.store.db import open_db, transaction


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    db = open_db(tmp_path / "lfr.sqlite3")
    for i in range(1, 6):
        audit.append(db, time=1000.0 + i, actor="test", action="step", details={"i": i})
    yield db
    db.close()


def _drop_triggers(db: sqlite_utils.Database) -> None:
    """What an attacker with the file would do first."""
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")


def test_intact_chain_verifies(db: sqlite_utils.Database) -> None:
    result = audit.verify(db)
    assert result.ok and result.rows == 5 and result.broken_seq is None
    assert audit.head(db)[0] == 5


def test_triggers_refuse_update_and_delete(db: sqlite_utils.Database) -> None:
    with pytest.raises(StorageError, match="append-only"):
        with transaction(db):
            db.execute("UPDATE audit SET actor = 'someone else' WHERE seq = 2")
    with pytest.raises(StorageError, match="append-only"):
        with transaction(db):
            db.execute("DELETE FROM audit WHERE seq = 2")
    assert audit.verify(db).ok


def test_edited_row_is_detected_with_its_seq(db: sqlite_utils.Database) -> None:
    _drop_triggers(db)
    db.execute("UPDATE audit SET details = ? WHERE seq = 3", [json.dumps({"i": 99})])
    result = audit.verify(db)
    assert not result.ok and result.broken_seq == 3 and "edited" in result.problem


def test_edit_with_recomputed_hash_breaks_the_next_row(db: sqlite_utils.Database) -> None:
    _drop_triggers(db)
    prev = db.execute("SELECT prev_hash FROM audit WHERE seq = 3").fetchone()[0]
    forged = audit.row_hash(prev, 3, 1003.0, "test", "step", '{"i":99}')
    db.execute("UPDATE audit SET details = '{\"i\":99}', hash = ? WHERE seq = 3", [forged])
    result = audit.verify(db)
    assert not result.ok and result.broken_seq == 4


def test_deleted_row_is_detected(db: sqlite_utils.Database) -> None:
    _drop_triggers(db)
    db.execute("DELETE FROM audit WHERE seq = 2")
    result = audit.verify(db)
    assert not result.ok and result.broken_seq == 3 and "missing" in result.problem


def test_deleted_first_row_is_detected(db: sqlite_utils.Database) -> None:
    _drop_triggers(db)
    db.execute("DELETE FROM audit WHERE seq = 1")
    assert audit.verify(db).broken_seq == 2


def test_inserted_row_is_detected(db: sqlite_utils.Database) -> None:
    """Renumbering the rows after an insertion still breaks the chain at the inserted row."""
    _drop_triggers(db)
    rows = db.execute("SELECT * FROM audit WHERE seq >= 3 ORDER BY seq DESC").fetchall()
    for row in rows:
        db.execute("UPDATE audit SET seq = ? WHERE seq = ?", [row[0] + 1, row[0]])
    prev = db.execute("SELECT hash FROM audit WHERE seq = 2").fetchone()[0]
    fake = audit.row_hash(prev, 3, 1002.5, "test", "step", '{"i":2.5}')
    db.execute("INSERT INTO audit VALUES (3, 1002.5, 'test', 'step', '{\"i\":2.5}', ?, ?)", [prev, fake])
    result = audit.verify(db)
    assert not result.ok and result.broken_seq == 4


def test_append_joins_and_rolls_back_with_the_callers_transaction(db: sqlite_utils.Database) -> None:
    with pytest.raises(RuntimeError):
        with transaction(db):
            audit.append(db, time=2000.0, actor="test", action="doomed")
            raise RuntimeError("caller fails after appending")
    assert audit.head(db)[0] == 5 and audit.verify(db).ok


@pytest.mark.parametrize("details, fragment", [
    ({"probe": b"\xff\xd8\xff"}, "binary data"),
    ({"nested": [{"embedding": bytearray(8)}]}, "details.nested\\[0\\].embedding: binary"),
    ({"image_b64": "A" * 5000}, "too long"),
    ({"x": float("nan")}, "not plain JSON"),
])
def test_images_and_non_facts_are_refused(db: sqlite_utils.Database, details: dict, fragment: str) -> None:
    with pytest.raises(AuditError, match=fragment):
        audit.append(db, time=2000.0, actor="test", action="bad", details=details)
    assert audit.head(db)[0] == 5


def test_concurrent_writers_keep_one_chain(tmp_path: Path) -> None:
    """Two processes appending at once must not fork the chain (each reads the head inside its write lock)."""
    path = tmp_path / "shared.sqlite3"
    open_db(path).close()

    def writer(name: str) -> None:
        db = open_db(path)
        for i in range(40):
            audit.append(db, time=float(i), actor=name, action="step", details={"i": i})
        db.close()

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    db = open_db(path)
    result = audit.verify(db)
    assert result.ok and result.rows == 80
    db.close()
