"""Fixtures for the watchlist bundle tests: signing keys, a handful of real LFW faces copied into tmp_path,
an entries CSV, a fixed clock inside the window, and a good bundle to derive bad ones from."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from bundle_helpers import (
    CATEGORIES,
    NOW,
    PEOPLE,
    TEST_CALIBRATION,
    VALID_FROM,
    VALID_UNTIL,
    Build,
    Keys,
    lfw_faces,
    write_csv,
)

from firmware.config import AppConfig
from firmware.hardware.clock import FakeClock
from firmware.match.score import ScoreCalibration
from firmware.store import deployments
from firmware.store.db import open_db
from firmware.watchlist.bundle import build_bundle
from firmware.watchlist.enrol import RecognizerEnroller
from firmware.watchlist.manifest import parse_instant
from firmware.watchlist.signing import init_signing_keys, load_private_key, load_trusted_keys


@pytest.fixture()
def keys(tmp_path: Path) -> Keys:
    pair = init_signing_keys(tmp_path / "hq")
    trusted_dir = tmp_path / "trusted-signers"
    trusted_dir.mkdir()
    shutil.copy(pair.public, trusted_dir / "hq.pub")
    (trusted_dir / "hq.pub").chmod(0o644)
    return Keys(load_private_key(pair.private), pair.private, trusted_dir, load_trusted_keys(trusted_dir))


@pytest.fixture(scope="session")
def lfw_sample(lfw_dir: Path) -> list[Path]:
    """Listing 4,000 LFW folders takes a moment: do it once per session."""
    return lfw_faces(lfw_dir, PEOPLE)


@pytest.fixture()
def images_dir(tmp_path: Path, lfw_sample: list[Path]) -> Path:
    """A few real LFW faces copied into tmp_path (never into the repository)."""
    d = tmp_path / "images"
    d.mkdir()
    for src in lfw_sample:
        shutil.copy(src, d / src.name)
    return d


@pytest.fixture()
def entries_csv(tmp_path: Path, images_dir: Path) -> Path:
    rows = [f"W-{i:03d},{img.stem.rsplit('_', 1)[0].replace('_', ' ')},{CATEGORIES[i % 4]},"
            f"\"Warrant ref {i}, court A\",{img.name}" for i, img in enumerate(sorted(images_dir.iterdir()))]
    return write_csv(tmp_path / "entries.csv", "id,name,category,reason,image", rows)


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture()
def build(tmp_path: Path, images_dir: Path, entries_csv: Path, keys: Keys, clock: FakeClock) -> Build:
    """Build a bundle with the good defaults, any argument overridable; returns the bundle path."""
    def _build(**over: Any) -> Path:
        args: dict[str, Any] = dict(images_dir=images_dir, entries_csv=entries_csv,
                                    deployment_ref="OP-2026-117",
                                    valid_from=parse_instant(VALID_FROM, "f"),
                                    valid_until=parse_instant(VALID_UNTIL, "u"),
                                    private_key=keys.private, out=tmp_path / "out" / "day.lfrw",
                                    created_by="hq-officer", clock=clock, overwrite=True)
        args.update(over)
        return build_bundle(**args).path
    return _build


@pytest.fixture()
def good_bundle(build: Build) -> Path:
    return build()


# -- the van side: real recognition models, a stand-in score calibration, a store with an open deployment --
@pytest.fixture(scope="session")
def enroller() -> RecognizerEnroller:
    """The real enroller on the repository's models, loaded once for the session."""
    return RecognizerEnroller.from_config(AppConfig())


@pytest.fixture(scope="session")
def calibration() -> ScoreCalibration:
    """A looser stand-in than the fitted models/calibration.toml (threshold at cosine 0.55 instead of 0.78,
    i.e. about FAR 1e-4 instead of 1e-6 per comparison), so that 20 people with two probe photos each give
    enough matches to test the mechanics; the fitted figure is measured by scripts/watchlist_roundtrip.py."""
    return TEST_CALIBRATION


@pytest.fixture()
def store(tmp_path: Path, clock: FakeClock) -> Iterator[sqlite_utils.Database]:
    """A real sqlite file with deployment OP-2026-117 (the `build` fixture's reference) open."""
    db = open_db(tmp_path / "lfr.sqlite3")
    deployments.start(db, authority="OP-2026-117", officer="PC Test", location="High Street", threshold=0.6,
                      clock=clock, actor="test")
    yield db
    db.close()
