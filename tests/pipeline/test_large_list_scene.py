"""The acceptance scene against a real-size list (`lfr bench pipeline --what scene --list-size N --photos K`):
who walks, who is listed from which photos, and the list's operating point reaching the pipeline."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from firmware.bench.scene_run import large_list_people
from firmware.bench.testbed import add_fused_watchlist, open_deployment
from firmware.config import AppConfig
from firmware.embed.recognizer import Recognizer
from firmware.match.operating_point import ThresholdPolicy
from firmware.match.score import ScoreCalibration
from firmware.pipeline.watchlist_watch import WatchlistWatcher


def test_listed_walkers_walk_with_photos_never_enrolled(lfw_dir: Path) -> None:
    walkers, entries = large_list_people(lfw_dir, people=30, watchlisted=5, list_size=120, photos=3)
    assert len(walkers) == 30 and len(entries) == 120
    listed = dict(entries)
    walking = {w.name: w.photos for w in walkers}
    on_list_walking = [n for n in walking if n in listed]
    assert len(on_list_walking) == 5  # the fillers never walk past; the strangers are on no list
    for n in on_list_walking:
        assert not set(walking[n]) & set(listed[n]) and len(walking[n]) == 2
        assert 1 <= len(listed[n]) <= 3
    assert all(1 <= len(p) <= 3 for p in listed.values())


def test_the_fused_list_carries_its_operating_point_to_the_pipeline(
        lfw_dir: Path, db: sqlite_utils.Database, recognizer: Recognizer, calibration: ScoreCalibration) -> None:
    _, entries = large_list_people(lfw_dir, people=10, watchlisted=3, list_size=12, photos=2)
    cfg = AppConfig()
    tight = ThresholdPolicy.from_config(cfg)
    tight = ThresholdPolicy(tight.policy, 0.001, tight.min_tpir, tight.floor_score, tight.probe_shots,
                            tight.single_shot_score, tight.curves)  # so tight that 12 entries raise it
    op = add_fused_watchlist(db, open_deployment(db), recognizer, entries, calibration=calibration, policy=tight)
    assert op is not None and op["raised"] and op["list_size"] == 12 and op["templates_per_entry"] > 1
    active = WatchlistWatcher(db, calibration).current()
    assert active is not None and len(active.subjects) == 12
    assert active.threshold_score == op["threshold_score"] > 0.6
