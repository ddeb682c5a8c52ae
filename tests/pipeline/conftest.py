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
from firmware.config import AppConfig, ApplianceConfig, GpioConfig, ModelsConfig, PathsConfig
from firmware.embed.recognizer import Recognizer
from firmware.match.score import ScoreCalibration, load_calibration
from firmware.store.db import open_config_db

from .pipeline_helpers import ready_db


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


@pytest.fixture()
def app(cfg: AppConfig, tmp_path: Path) -> AppConfig:
    """The hub's configuration with no link and no GPIO (the services' fault tests drive those themselves)."""
    return replace(cfg, appliance=ApplianceConfig(link=False, stop_flag=str(tmp_path / "capture-stopped")),
                   gpio=GpioConfig(pin_factory="none"))


@pytest.fixture()
def ready(db: sqlite_utils.Database, recognizer: Recognizer, lfw_dir: Path) -> int:
    """An open deployment with a one-subject watchlist (S1, enrolled from the first LFW photo): its id."""
    photo = sorted((lfw_dir / "images").glob("*/*.jpg"))[0]
    return ready_db(db, recognizer, [("S1", photo)])
