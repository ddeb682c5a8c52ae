"""A throwaway appliance state for benchmarks, acceptance runs and tests: an open deployment and a watchlist.

Watchlist rows are written straight into `watchlist_entries` (store schema) with embeddings from the
`Recognizer`, the way an import would enrol them; the signed-bundle import is not needed for a bench.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import sqlite_utils

from firmware.config import AppConfig, PathsConfig
from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError
from firmware.hardware.clock import Clock, SystemClock
from firmware.match.fusion import fuse
from firmware.match.operating_point import ThresholdPolicy
from firmware.match.score import ScoreCalibration
from firmware.store import deployments
from firmware.store.db import open_config_db, transaction


def enrol_photo(recognizer: Recognizer, photo: Path) -> np.ndarray:
    """The unit embedding of the main face of a reference photo; DataError when no face is found."""
    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"cannot read reference photo {photo}")
    found = recognizer.main_face(image)
    if not found:
        raise DataError(f"no face found in reference photo {photo}")
    return recognizer.embed(recognizer.face(image, found[0]))


def open_deployment(db: sqlite_utils.Database, *, threshold: float = 0.6, clock: Clock | None = None,
                    location: str = "bench scene") -> int:
    """Start a deployment for the bench (authority 'BENCH'); returns its id."""
    dep = deployments.start(db, authority="BENCH", officer="bench", location=location, threshold=threshold,
                            clock=clock or SystemClock(), actor="bench")
    return dep.id


def add_watchlist(db: sqlite_utils.Database, deployment_id: int, recognizer: Recognizer,
                  subjects: Sequence[tuple[str, Path]], *, category: str = "wanted",
                  reason: str = "bench") -> list[str]:
    """Enrol (subject_id, reference photo) pairs into the deployment's watchlist; returns the ids enrolled."""
    rows: list[tuple[int, str, str, str, str, bytes, bytes]] = []
    for subject_id, photo in subjects:
        emb = enrol_photo(recognizer, photo)
        rows.append((deployment_id, subject_id, subject_id.replace("_", " "), category, reason,
                     photo.read_bytes(), emb.astype("<f4").tobytes()))
    bundle = hashlib.sha256("".join(r[1] for r in rows).encode()).hexdigest()
    with transaction(db):
        for r in rows:
            db.execute("INSERT INTO watchlist_entries (deployment_id, subject_id, name, category, reason, "
                       "reference_jpeg, embedding, bundle_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       [*r, bundle])
    return [r[1] for r in rows]


def add_fused_watchlist(db: sqlite_utils.Database, deployment_id: int, recognizer: Recognizer,
                        subjects: Sequence[tuple[str, Sequence[Path]]], *, calibration: ScoreCalibration,
                        policy: ThresholdPolicy | None, clock: Clock | None = None) -> dict[str, Any] | None:
    """Enrol (subject_id, reference photos) into the deployment's watchlist as an import does: each subject's
    photos fused by the mean into one template (photos with no face skipped), and the list's operating point
    (`firmware.match.operating_point`) stored with a `watchlists` row, so the pipeline judges at its threshold.
    Returns the operating point (None without a policy)."""
    rows: list[tuple[int, str, str, str, str, bytes, bytes]] = []
    fused_counts: list[int] = []
    for subject_id, photos in subjects:
        embs = []
        for photo in photos:
            try:
                embs.append(enrol_photo(recognizer, photo))
            except DataError:
                continue
        if not embs:
            continue
        fused_counts.append(len(embs))
        rows.append((deployment_id, subject_id, subject_id.replace("_", " "), "wanted", "bench",
                     photos[0].read_bytes(), fuse(embs).astype("<f4").tobytes()))
    bundle = hashlib.sha256("".join(r[1] for r in rows).encode()).hexdigest()
    op = policy.evaluate(calibration, fused_counts).to_dict() if policy is not None else None
    now = (clock or SystemClock()).time()
    with transaction(db):
        db.conn.executemany("INSERT INTO watchlist_entries (deployment_id, subject_id, name, category, reason, "
                            "reference_jpeg, embedding, bundle_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [(*r, bundle) for r in rows])
        db.execute("INSERT INTO watchlists (deployment_id, bundle_sha256, signer_fingerprint, deployment_ref, "
                   "valid_from, valid_until, imported_at, accepted, rejected, report) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [deployment_id, bundle, "bench", "BENCH", now - 3600, now + 8 * 3600, now, len(rows), 0,
                    json.dumps({"entries": len(rows), "accepted": len(rows), "rejected": [], "duplicates": [],
                                **({"operating_point": op} if op else {})})])
    return op


@contextmanager
def bench_state(cfg: AppConfig, recognizer: Recognizer, watchlist: Sequence[tuple[str, Path]], *,
                fused: Sequence[tuple[str, Sequence[Path]]] = (), calibration: ScoreCalibration | None = None,
                ) -> Iterator[tuple[AppConfig, sqlite_utils.Database]]:
    """A throwaway state directory: `cfg` pointed at it, and its database with an open deployment and
    `watchlist` enrolled (or, with `fused`, several photos per subject fused and the list's operating point
    stored, as an import does); both are deleted on exit."""
    with tempfile.TemporaryDirectory(prefix="lfr-bench-") as tmp:
        run_cfg = replace(cfg, paths=PathsConfig(state_dir=tmp, config_dir=tmp))
        db = open_config_db(run_cfg)
        try:
            dep = open_deployment(db, threshold=cfg.match.threshold)
            if fused:
                if calibration is None:
                    raise DataError("a fused watchlist needs the score calibration for its operating point")
                add_fused_watchlist(db, dep, recognizer, fused, calibration=calibration,
                                    policy=ThresholdPolicy.from_config(cfg))
            else:
                add_watchlist(db, dep, recognizer, watchlist)
            yield run_cfg, db
        finally:
            db.close()
