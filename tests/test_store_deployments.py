"""Deployments: one open at a time; stopping wipes the watchlist so no byte of it remains in the files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
import sqlite_utils

from firmware.errors import PolicyError
from firmware.hardware.clock import FakeClock
from firmware.store import audit, deployments
from firmware.store.db import open_db, transaction
from firmware.store.stats import read_stats

N_ENTRIES = 20


def _embedding(i: int) -> bytes:
    v = np.random.default_rng(i).standard_normal(192).astype("<f4")
    return (v / np.linalg.norm(v)).astype("<f4").tobytes()


def _jpeg(i: int) -> bytes:
    img = np.random.default_rng(1000 + i).integers(0, 255, (112, 112, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def _enrol(db: sqlite_utils.Database, deployment_id: int) -> None:
    """What the watchlist import writes (the real import lives in firmware.watchlist)."""
    with transaction(db):
        for i in range(N_ENTRIES):
            db.execute("INSERT INTO watchlist_entries (deployment_id, subject_id, name, category, reason, "
                       "reference_jpeg, embedding, bundle_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [deployment_id, f"S-{i}", f"Zebedee Quartermain {i}", "wanted", "warrant", _jpeg(i),
                        _embedding(i), "ab" * 32])


def _files_bytes(db_path: Path) -> bytes:
    """Every file SQLite keeps for the database: the main file, the WAL and the shared-memory index."""
    return b"".join(p.read_bytes() for p in sorted(db_path.parent.glob(db_path.name + "*")))


def _secrets() -> list[bytes]:
    return [_embedding(3), _embedding(17), _jpeg(5)[200:400], b"Zebedee Quartermain"]


def test_second_open_deployment_is_refused(tmp_path: Path) -> None:
    clock = FakeClock()
    db = open_db(tmp_path / "lfr.sqlite3")
    first = deployments.start(db, authority="AUTH-1", officer="PC One", location="Market Sq", threshold=0.6,
                              clock=clock, actor="test")
    with pytest.raises(PolicyError, match="deployment 1 .* is still open"):
        deployments.start(db, authority="AUTH-2", officer="PC Two", location="Elsewhere", threshold=0.6,
                          clock=clock, actor="test")
    assert deployments.current(db) == first
    with pytest.raises(PolicyError, match="needs an authority reference"):
        deployments.start(db, authority="  ", officer="PC", location="X", threshold=0.6, clock=clock,
                          actor="test")


def test_stop_wipes_every_watchlist_byte(tmp_path: Path) -> None:
    path = tmp_path / "lfr.sqlite3"
    clock = FakeClock()
    db = open_db(path)
    dep = deployments.start(db, authority="AUTH-1", officer="PC One", location="Market Sq", threshold=0.6,
                            clock=clock, actor="test")
    _enrol(db, dep.id)
    before = _files_bytes(path)
    assert all(s in before for s in _secrets()), "the search must find the watchlist before the wipe"

    clock.advance(3600)
    result = deployments.stop(db, clock=clock, actor="test")
    assert result.entries_wiped == N_ENTRIES and result.wal_truncated
    assert result.deployment.stopped == clock.time() and deployments.current(db) is None
    assert db.execute("SELECT COUNT(*) FROM watchlist_entries").fetchone()[0] == 0
    assert read_stats(db, dep.id)["watchlist_size"] == N_ENTRIES
    after = _files_bytes(path)
    found = [i for i, s in enumerate(_secrets()) if s in after]
    assert found == [], f"watchlist bytes still on disk after the wipe: secrets {found}"
    actions = [r[0] for r in db.execute("SELECT action FROM audit ORDER BY seq")]
    assert actions == ["deployment_start", "watchlist_wipe", "deployment_stop"] and audit.verify(db).ok
    db.close()


def test_without_secure_delete_the_wipe_would_leave_bytes(tmp_path: Path) -> None:
    """Shows the byte search can fail: a plain DELETE leaves the embeddings in the file's free pages."""
    path = tmp_path / "lfr.sqlite3"
    db = open_db(path)
    dep = deployments.start(db, authority="A", officer="O", location="L", threshold=0.6, clock=FakeClock(),
                            actor="test")
    _enrol(db, dep.id)
    db.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA secure_delete = OFF")
    conn.execute("DELETE FROM watchlist_entries")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert any(s in _files_bytes(path) for s in _secrets())


def test_stop_without_open_deployment_is_refused(tmp_path: Path) -> None:
    db = open_db(tmp_path / "lfr.sqlite3")
    with pytest.raises(PolicyError, match="no open deployment"):
        deployments.stop(db, clock=FakeClock(), actor="test")
    assert audit.head(db)[0] == 0


def test_list_is_oldest_first(tmp_path: Path) -> None:
    clock = FakeClock()
    db = open_db(tmp_path / "lfr.sqlite3")
    for place in ("A St", "B St"):
        deployments.start(db, authority="AUTH", officer="PC", location=place, threshold=0.6, clock=clock,
                          actor="test")
        clock.advance(60)
        deployments.stop(db, clock=clock, actor="test")
    assert [(d.id, d.location, d.is_open) for d in deployments.list_deployments(db)] == \
        [(1, "A St", False), (2, "B St", False)]


def test_scanning_needs_an_open_deployment_and_a_watchlist(tmp_path: Path) -> None:
    db = open_db(tmp_path / "lfr.sqlite3")
    with pytest.raises(PolicyError, match="no open deployment"):
        deployments.require_ready_to_scan(db)
    dep = deployments.start(db, authority="A", officer="O", location="L", threshold=0.6, clock=FakeClock(),
                            actor="test")
    with pytest.raises(PolicyError, match="no watchlist loaded"):
        deployments.require_ready_to_scan(db)
    _enrol(db, dep.id)
    assert deployments.require_ready_to_scan(db) == dep
