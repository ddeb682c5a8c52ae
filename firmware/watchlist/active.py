"""The active watchlist as the pipeline sees it: a cheap version stamp and the search index it stands for.

The pipeline asks for `active_version` every second or so (one indexed query) and rebuilds its
`WatchlistIndex` only when the stamp changes. An import replaces the entries in one transaction, so a
reader sees either the old list or the new one, never half of each; the stamp changes with every swap
because entry ids are never reused (AUTOINCREMENT).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlite_utils

from firmware.match.score import ScoreCalibration
from firmware.match.watchlist_index import WatchlistIndex

_OPEN = "(SELECT id FROM deployments WHERE stopped IS NULL)"


@dataclass(frozen=True, slots=True)
class Subject:
    """What an alert shows of a watchlisted person: never more than the bundle gave."""

    subject_id: str
    name: str
    category: str
    reason: str
    reference_jpeg: bytes


def active_version(db: sqlite_utils.Database) -> str | None:
    """A stamp that changes whenever the open deployment's watchlist changes; None when there is none."""
    row = db.execute(f"SELECT count(*), max(id), max(bundle_sha256) FROM watchlist_entries "
                     f"WHERE deployment_id IN {_OPEN}").fetchone()
    if not row or not row[0]:
        return None
    return f"{row[2]}:{row[0]}:{row[1]}"


def active_operating_point(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """The operating point stored with the open deployment's loaded import (threshold in force, expectations);
    None when there is none or it was imported before operating points were recorded."""
    row = db.execute(f"SELECT report FROM watchlists WHERE wiped_at IS NULL AND deployment_id IN {_OPEN} "
                     "ORDER BY id DESC LIMIT 1").fetchone()
    if not row:
        return None
    try:
        op = json.loads(row[0]).get("operating_point")
    except (ValueError, AttributeError):
        return None
    return op if isinstance(op, dict) else None


def load_active(db: sqlite_utils.Database,
                calibration: ScoreCalibration) -> tuple[WatchlistIndex, dict[str, Subject]] | None:
    """The open deployment's watchlist as a search index plus each subject's alert details, read in one query."""
    rows = db.execute(f"SELECT subject_id, name, category, reason, reference_jpeg, embedding, bundle_sha256, id "
                      f"FROM watchlist_entries WHERE deployment_id IN {_OPEN} ORDER BY id").fetchall()
    if not rows:
        return None
    emb = np.stack([np.frombuffer(r[5], dtype="<f4") for r in rows])
    version = f"{max(r[6] for r in rows)}:{len(rows)}:{max(r[7] for r in rows)}"
    index = WatchlistIndex([r[0] for r in rows], emb, calibration, version=version)
    subjects = {r[0]: Subject(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows}
    return index, subjects
