"""Issue 13, finding 1: rollback protection. Import v1 (A, B, C, D), then v2 without B, then v1 again: v1 came
back and B with it. Now a list is refused (`rollback`) unless it is newer than every list the deployment
loaded and not one it replaced or wiped; the active list offered again changes nothing and says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from bundle_helpers import NOW, Build, Keys, write_csv
from test_watchlist_install import install, snapshot

from firmware.hardware.clock import FakeClock
from firmware.match.score import ScoreCalibration
from firmware.store import audit, deployments, watchlists
from firmware.watchlist import errors as E
from firmware.watchlist.enrol import RecognizerEnroller
from firmware.watchlist.install import MAX_BUILD_LEAD_S
from firmware.watchlist.manifest import parse_instant


def refused_codes(db: sqlite_utils.Database) -> list[str]:
    return [json.loads(r[0])["code"] for r in
            db.execute("SELECT details FROM audit WHERE action = 'watchlist_import_refused' ORDER BY seq")]


def active_ids(db: sqlite_utils.Database) -> list[str]:
    return [r[0] for r in db.execute("SELECT subject_id FROM watchlist_entries ORDER BY subject_id")]


@pytest.fixture()
def versions(build: Build, tmp_path: Path, entries_csv: Path) -> dict[str, Path]:
    """v1: the four people, built at NOW; v2: the same without the second (taken off by HQ), NOW + 60 s."""
    lines = entries_csv.read_text().splitlines()
    v2_csv = write_csv(tmp_path / "v2.csv", lines[0], [lines[1], *lines[3:]])
    return {"v1": build(out=tmp_path / "out" / "v1.lfrw"),
            "v2": build(entries_csv=v2_csv, clock=FakeClock(NOW + 60), out=tmp_path / "out" / "v2.lfrw")}


def test_v1_v2_v1_ends_with_v2_and_refuses_the_rollback(store: sqlite_utils.Database, versions: dict[str, Path],
                                                         keys: Keys, clock: FakeClock,
                                                         enroller: RecognizerEnroller,
                                                         calibration: ScoreCalibration) -> None:
    install(store, versions["v1"], keys, clock, enroller, calibration)
    assert "W-001" in active_ids(store)
    v2 = install(store, versions["v2"], keys, clock, enroller, calibration)
    assert "W-001" not in active_ids(store)
    before = snapshot(store)
    with pytest.raises(E.Rollback, match="never loaded again"):
        install(store, versions["v1"], keys, clock, enroller, calibration)
    assert snapshot(store) == before and "W-001" not in active_ids(store)
    assert watchlists.active(store) == v2.record
    assert refused_codes(store) == ["rollback"]
    assert audit.verify(store).ok


def test_an_older_list_never_seen_is_refused(store: sqlite_utils.Database, versions: dict[str, Path],
                                             keys: Keys, clock: FakeClock, enroller: RecognizerEnroller,
                                             calibration: ScoreCalibration) -> None:
    """v2 first, then v1 (built earlier, never loaded here): not newer than the list loaded, so refused."""
    install(store, versions["v2"], keys, clock, enroller, calibration)
    with pytest.raises(E.Rollback, match="is not newer than"):
        install(store, versions["v1"], keys, clock, enroller, calibration)
    assert refused_codes(store) == ["rollback"]


def test_a_wiped_list_is_not_loaded_again(store: sqlite_utils.Database, versions: dict[str, Path], keys: Keys,
                                          clock: FakeClock, enroller: RecognizerEnroller,
                                          calibration: ScoreCalibration) -> None:
    install(store, versions["v1"], keys, clock, enroller, calibration)
    dep = deployments.require_open(store)
    deployments.wipe_watchlist(store, dep.id, clock=clock, actor="test", reason="wiped by operator")
    with pytest.raises(E.Rollback, match="wiped by operator"):
        install(store, versions["v1"], keys, clock, enroller, calibration)
    assert active_ids(store) == []
    install(store, versions["v2"], keys, clock, enroller, calibration)  # a newer list is fine
    assert len(active_ids(store)) >= 2


def test_the_active_list_again_is_a_no_op_that_says_so(store: sqlite_utils.Database, versions: dict[str, Path],
                                                       keys: Keys, clock: FakeClock, enroller: RecognizerEnroller,
                                                       calibration: ScoreCalibration) -> None:
    class NeverCalled:
        def enrol(self, image: Any) -> Any:
            raise AssertionError("a no-op import must not enrol")

    first = install(store, versions["v1"], keys, clock, enroller, calibration)
    before = snapshot(store)
    again = install(store, versions["v1"], keys, clock, NeverCalled(), calibration)
    assert again.unchanged and again.record == first.record and again.result.entries == ()
    assert snapshot(store) == before
    actions = [r[0] for r in store.execute("SELECT action FROM audit ORDER BY seq")]
    assert actions[-1] == "watchlist_import_unchanged" and refused_codes(store) == []


@pytest.mark.parametrize("created, accepted", [(NOW + 200, True), (NOW + 3600, False)])
def test_created_at_in_the_future_beyond_the_skew(build: Build, store: sqlite_utils.Database, keys: Keys,
                                                  clock: FakeClock, enroller: RecognizerEnroller,
                                                  calibration: ScoreCalibration, created: float,
                                                  accepted: bool) -> None:
    """A list dated 2099 was accepted and would have outranked every list built after it."""
    bundle = build(clock=FakeClock(created))
    if accepted:
        install(store, bundle, keys, clock, enroller, calibration)
        return
    with pytest.raises(E.CreatedInFuture, match="check the clocks"):
        install(store, bundle, keys, clock, enroller, calibration)
    assert refused_codes(store) == ["created_in_future"]


@pytest.mark.parametrize("lead, accepted", [(MAX_BUILD_LEAD_S - 3600, True), (MAX_BUILD_LEAD_S + 3600, False)])
def test_created_long_before_the_deployment_was_started(build: Build, store: sqlite_utils.Database, keys: Keys,
                                                        clock: FakeClock, enroller: RecognizerEnroller,
                                                        calibration: ScoreCalibration, lead: float,
                                                        accepted: bool) -> None:
    """The deployment (store fixture) started at NOW; a list built the day before is normal."""
    bundle = build(clock=FakeClock(NOW - lead), valid_from=NOW - 3600,
                   valid_until=parse_instant("2026-11-22T20:00:00Z", "u"))
    if accepted:
        install(store, bundle, keys, clock, enroller, calibration)
        return
    with pytest.raises(E.CreatedBeforeDeployment, match="earlier operation"):
        install(store, bundle, keys, clock, enroller, calibration)
    assert refused_codes(store) == ["created_before_deployment"]
