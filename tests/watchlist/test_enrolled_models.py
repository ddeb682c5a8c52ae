"""A watchlist remembers the model files that enrolled it: the same bundle imported twice on one appliance gives
the same entries and embeddings, and a camera whose files differ does not search it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import sqlite_utils
from bundle_helpers import Build, Keys

from firmware.config import AppConfig, ModelsConfig, PathsConfig
from firmware.embed.recognizer import Recognizer
from firmware.hardware.clock import FakeClock
from firmware.match.score import ScoreCalibration
from firmware.pipeline.watchlist_watch import WatchlistWatcher
from firmware.store import deployments, watchlists
from firmware.store.db import open_db
from firmware.watchlist.enrol import RecognizerEnroller
from firmware.watchlist.install import install_bundle


def entries(db: sqlite_utils.Database) -> dict[str, bytes]:
    return {r[0]: bytes(r[1]) for r in db.execute(
        "SELECT subject_id, embedding FROM watchlist_entries ORDER BY subject_id")}


def second_store(folder: Path, clock: FakeClock) -> sqlite_utils.Database:
    """Another appliance database with the same deployment open (like the `store` fixture)."""
    folder.mkdir()
    db = open_db(folder / "lfr.sqlite3")
    deployments.start(db, authority="OP-2026-117", officer="PC Test", location="High Street", threshold=0.6,
                      clock=clock, actor="test")
    return db


def test_the_same_bundle_twice_gives_the_same_list_and_records_its_models(
        tmp_path: Path, store: sqlite_utils.Database, build: Build, keys: Keys, clock: FakeClock,
        calibration: ScoreCalibration) -> None:
    state = tmp_path / "state"
    state.mkdir()
    cfg = replace(AppConfig(models=ModelsConfig(accelerator="cpu")),
                  paths=PathsConfig(state_dir=str(state), config_dir=str(tmp_path / "etc")))
    bundle = build()
    imported = []
    # Two imports, each with its own models loaded (two `lfr watchlist import` runs) into its own database: a
    # second import into the same one is recognised as the list already active and changes nothing.
    for db in (store, second_store(tmp_path / "second", clock)):
        enroller = RecognizerEnroller(Recognizer.from_config(cfg))
        models = enroller.recognizer.model_files()
        outcome = install_bundle(db, bundle, trusted_keys=keys.trusted, clock=clock, enroller=enroller,
                                 calibration=calibration, threshold=0.6, actor="test",
                                 models=enroller.recognizer.model_files)
        imported.append((outcome.record.accepted, entries(db), models))
    record = watchlists.active(store)
    assert record is not None and record.report["models"] == imported[1][2]
    details = store.execute("SELECT details FROM audit WHERE action = 'watchlist_import' ORDER BY seq DESC "
                            "LIMIT 1").fetchone()[0]
    assert json.loads(details)["models"] == imported[1][2]

    same = WatchlistWatcher(store, calibration, models=imported[1][2])
    assert same.current() is not None and not same.refused
    other = dict(imported[1][2], face_embedder="face_embedder_float.tflite sha256:" + "0" * 64)
    refusing = WatchlistWatcher(store, calibration, models=other)
    assert refusing.current() is None
    assert "enrolled with other model files" in refusing.refused and "face_embedder" in refusing.refused
    assert "import the bundle again" in refusing.refused
    emb = np.frombuffer(next(iter(imported[1][1].values())), "<f4")
    assert emb.shape == (192,) and abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
