"""What the operator is told about an import: a short reason for every refusal code, and the newest result read
from a real audit log (only rows after the last one seen; names and paths never carried)."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from firmware.store import audit
from firmware.store.db import open_db
from firmware.watchlist import errors as E
from firmware.watchlist.notice import REFUSAL_SUMMARIES, newest_import, refusal_summary

IMPORT_DOC = Path(__file__).resolve().parents[2] / "docs" / "watchlist-import.md"


def test_every_refusal_has_its_own_short_summary() -> None:
    refusals = [c for c in vars(E).values() if isinstance(c, type) and issubclass(c, E.BundleRefused)]
    assert all("summary" in vars(c) for c in refusals), [c.__name__ for c in refusals if "summary" not in vars(c)]
    assert {c.code for c in refusals} | {"deployment_ref_mismatch", "no_deployment",
                                         "nothing_enrolled"} == set(REFUSAL_SUMMARIES)
    summaries = list(REFUSAL_SUMMARIES.values())
    assert len(set(summaries)) == len(summaries) and max(map(len, summaries)) <= 60
    assert refusal_summary("untrusted_signer") == "signature by an untrusted key"
    assert "ModelError" in refusal_summary("ModelError")  # a failure without a code of its own
    text = IMPORT_DOC.read_text()
    for code in ("deployment_ref_mismatch", "no_deployment", "nothing_enrolled"):
        assert f"`{code}`" in text, code


def _row(db: sqlite_utils.Database, action: str, t: float, **details: object) -> int:
    return audit.append(db, time=t, actor="cli:test", action=action, details=details)


def test_newest_import_reads_only_what_came_after(tmp_path: Path) -> None:
    db = open_db(tmp_path / "lfr.sqlite3")
    try:
        assert newest_import(db) is None
        first = _row(db, "watchlist_import_refused", 100.0, code="expired", error="bundle of A. Person expired")
        _row(db, "deployment_start", 101.0, authority="OP-1")
        notice = newest_import(db)
        assert notice is not None and (notice.seq, notice.time, notice.outcome, notice.code, notice.reason) == (
            first, 100.0, "refused", "expired", "list expired")
        assert "Person" not in repr(notice)
        assert newest_import(db, after_seq=first) is None  # nothing new since
        _row(db, "watchlist_import_refused", 102.0, code="not_an_image", error="x")
        second = _row(db, "watchlist_import", 103.0, deployment_ref="OP-1", accepted=3,
                      rejected=[{"id": "W-1", "reason": "no face", "detail": ""}])
        notice = newest_import(db, after_seq=first)
        assert notice is not None and notice.seq == second and notice.is_accepted
        assert (notice.entries_accepted, notice.entries_rejected, notice.deployment_ref, notice.code) == (
            3, 1, "OP-1", None)
        assert notice.describe() == "accepted for OP-1: 3 entries accepted, 1 rejected"
    finally:
        db.close()
