"""Fixtures for the live pipeline tests: one Recognizer per session, the score calibration, a street
background, and a real database file in tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils

from firmware.bench.scene_run import scene_background
from firmware.config import AppConfig, ModelsConfig, PathsConfig
from firmware.embed.recognizer import Recognizer
from firmware.match.score import ScoreCalibration, load_calibration
from firmware.store.db import open_config_db


@pytest.fixture(scope="session")
def recognizer() -> Recognizer:
    """The int8 files (the ones the calibration was fitted on) on one thread: these tests compare detection
    and match scores with thresholds, so the models must not depend on a timing made at start-up (that made
    the standing-crowd test flaky) nor on the thread count (bit-identical here, but not promised elsewhere)."""
    return Recognizer.from_config(AppConfig(models=ModelsConfig(precision="int8", threads=1)))


@pytest.fixture(scope="session")
def calibration() -> ScoreCalibration:
    """The committed `models/calibration.toml` (fitted on LFW; its `far` says the false-accept rate per comparison
    at the threshold), the one the appliance runs with."""
    return load_calibration(Path(AppConfig().models.dir))


@pytest.fixture(scope="session")
def background(shared_data: Path, recognizer: Recognizer) -> np.ndarray:
    return scene_background(shared_data, recognizer)


@pytest.fixture()
def cfg(tmp_path: Path) -> AppConfig:
    """Defaults with the state directory (database) in tmp_path."""
    state = tmp_path / "state"
    return replace(AppConfig(), paths=PathsConfig(state_dir=str(state), config_dir=str(tmp_path / "etc")))


@pytest.fixture()
def db(cfg: AppConfig) -> Iterator[sqlite_utils.Database]:
    database = open_config_db(cfg)
    yield database
    database.close()
