"""The false-alert budget: the threshold an import sets for the list it loads, the pipeline judging at it,
and a list too large for `match.min_tpir` flagged in every place the operator looks (CLI, status, audit,
Health for the viewer, status LED, deployment report)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bundle_helpers import TEST_CALIBRATION
from gpiozero.pins.mock import MockFactory
from test_watchlist_van_cli import make_van, run

from firmware.cli.main import main
from firmware.config import REPO_MODELS_DIR, AppConfig, load_config
from firmware.decide.decider import Outcome
from firmware.embed.recognizer import Recognizer
from firmware.hardware.clock import FakeClock
from firmware.hardware.gpio import GpioIndicators
from firmware.hardware.indicators import Pattern
from firmware.match.operating_point import load_curves, operating_point
from firmware.match.score import load_calibration
from firmware.match.watchlist_index import Match
from firmware.pipeline.camera import CameraPipeline
from firmware.pipeline.hub import Hub
from firmware.pipeline.services import HubServices
from firmware.pipeline.watchlist_watch import WatchlistWatcher
from firmware.store.db import open_config_db
from firmware.store.report import build_report
from firmware.watchlist.manifest import format_instant

CAL = load_calibration(REPO_MODELS_DIR)
CURVES = load_curves(REPO_MODELS_DIR)


def op_for(n: int, photos: int = 1, **kw: object) -> dict:
    args = dict(policy="budget", budget_per_10k=1.0, min_tpir=0.85, floor_score=0.6, probe_shots=2,
                single_shot_score=0.9)
    args.update(kw)
    return operating_point(CAL, CURVES, [photos] * n, **args).to_dict()  # type: ignore[arg-type]


def test_the_committed_calibration_holds_curves_for_every_configuration() -> None:
    assert CURVES is not None
    assert {(k, s) for k in range(1, 6) for s in range(1, 4)} <= set(CURVES.by_config)
    c = CURVES.get(3, 2)
    assert np.all(np.diff(c.fmr) <= 1e-15) and np.all(np.diff(c.tpir) <= 1e-12)  # both fall with the cosine


def test_the_threshold_rises_with_the_list_and_never_falls_below_the_floor() -> None:
    small, mid, big = op_for(10), op_for(1_000), op_for(10_000)
    assert small["threshold_score"] == 0.6 and not small["raised"]
    assert 0.6 < mid["threshold_score"] < big["threshold_score"] < 1.0
    for op in (small, mid, big):
        assert op["expected_false_alerts_per_10k_tracks"] <= 1.0 + 1e-6
    assert big["expected_tpir"] < mid["expected_tpir"]


def test_more_photos_per_entry_find_more_people_at_the_same_budget() -> None:
    one, three = op_for(2_000, 1), op_for(2_000, 3)
    assert three["expected_tpir"] > one["expected_tpir"] + 0.05


def test_a_list_too_large_for_min_tpir_is_flagged_with_the_size_that_would_hold() -> None:
    op = op_for(10_000, 3)
    assert not op["meets_min_tpir"] and op["warning"]
    assert 0 < op["largest_list_for_min_tpir"] < 10_000
    assert f"{op['largest_list_for_min_tpir']:,}" in op["warning"]
    ok = op_for(op["largest_list_for_min_tpir"], 3)
    assert ok["meets_min_tpir"] and ok["warning"] is None


def test_fixed_policy_keeps_the_threshold_and_says_it_is_over_budget() -> None:
    op = op_for(10_000, 1, policy="fixed")
    assert op["threshold_score"] == 0.6 and not op["raised"]
    assert op["expected_false_alerts_per_10k_tracks"] > 1.0 and "OVER THE FALSE-ALERT BUDGET" in op["warning"]


def test_a_calibration_without_curves_keeps_the_floor_and_says_why(tmp_path: Path) -> None:
    text = (REPO_MODELS_DIR / "calibration.toml").read_text().split("\n# Per configuration", 1)[0]
    (tmp_path / "calibration.toml").write_text(text)
    assert load_curves(tmp_path) is None
    op = operating_point(CAL, None, [1] * 5000, policy="budget", budget_per_10k=1.0, min_tpir=0.85,
                         floor_score=0.6, probe_shots=2, single_shot_score=0.9).to_dict()
    assert op["threshold_score"] == 0.6 and "lfr eval calibrate" in op["note"]


@pytest.fixture()
def strict_van(tmp_path: Path, keys: object, images_dir: Path, entries_csv: Path) -> dict[str, str]:
    """A van whose budget (0.001 false alerts per 10,000 tracks) is so tight that even this 4-entry list
    needs a raised threshold, and whose min_tpir (0.999) no list can meet: the flagged case, small."""
    return make_van(tmp_path, keys, images_dir, entries_csv,
                    '[match]\nfalse_alerts_per_10k_tracks = 0.001\nmin_tpir = 0.999\n')


def test_raised_threshold_is_used_and_the_flag_is_shown_everywhere(
        strict_van: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ("--config", strict_van["config"])
    assert run(capsys, "deployment", "start", "--authority", "OP-CLI", "--officer", "PC A", "--location",
               "Market Sq", *cfg)[0] == 0
    code, out, err = run(capsys, "watchlist", "import", strict_van["stick"], *cfg, "--json")
    assert code == 0
    op = json.loads(out)["operating_point"]
    assert op["raised"] and op["threshold_score"] > 0.6 and op["policy"] == "budget"
    assert op["list_size"] == json.loads(out)["watchlist"]["accepted"]
    assert "TOO LARGE FOR THE FALSE-ALERT BUDGET" in err  # CLI, loudly, on stderr too
    code, out, _ = run(capsys, "watchlist", "status", *cfg)
    assert code == 0 and f"threshold score {op['threshold_score']:.3f}" in out and "!! WATCHLIST TOO LARGE" in out

    app = load_config(strict_van["config"])
    app = replace(app, appliance=replace(app.appliance, link=False))
    db = open_config_db(app)
    row = db.execute("SELECT details FROM audit WHERE action = 'watchlist_import'").fetchone()
    assert json.loads(row[0])["operating_point"]["warning"] == op["warning"]  # the audit row

    clock = FakeClock(time.time())
    factory = MockFactory()
    svc = HubServices(app, Hub(db, TEST_CALIBRATION, app.pipeline, clock=clock), clock=clock,
                      indicators=GpioIndicators(app.gpio, pin_factory=factory, clock=clock, tick=None))
    try:
        svc.tick()
        assert svc.lights.indicators.pattern is Pattern.IMPORT_FLAGGED  # type: ignore[attr-defined]
        h = svc.health()  # the viewer's status bar
        assert h.op_warning == op["warning"] and h.op_threshold_score == pytest.approx(op["threshold_score"])
        assert h.op_list_size == op["list_size"]
    finally:
        svc.close()
        factory.close()

    report = build_report(db, 1)  # the deployment report, beside the recorded false alerts
    assert report["operating_threshold"] == op["threshold_score"] and report["recorded_false_alerts"] == 0
    assert report["operating_points"][-1]["warning"] == op["warning"]

    # the pipeline judges this list at the raised threshold, not at match.threshold
    active = WatchlistWatcher(db, TEST_CALIBRATION).current()
    assert active is not None and active.threshold_score == pytest.approx(op["threshold_score"])
    pipeline = CameraPipeline("cam0", Recognizer.from_config(AppConfig()), app, _NullSender())
    assert pipeline.decider.params.threshold == 0.6
    pipeline.set_watchlist(active)
    assert pipeline.decider.params.threshold == pytest.approx(op["threshold_score"])
    assert pipeline.decider.params.single_shot_score >= op["threshold_score"]
    between = (0.6 + op["threshold_score"]) / 2
    subject = next(iter(active.subjects))
    for i in range(2):
        pipeline.decider.add_shot(7, np.eye(192, dtype=np.float32)[i], 0.9, i)
    assert pipeline.decider.decide(7, Match(subject, 0.7, between), 1.0).outcome is Outcome.BELOW
    assert pipeline.decider.decide(7, Match(subject, 0.9, op["threshold_score"]), 1.0).outcome is Outcome.ALERT
    db.close()


def test_a_list_within_budget_keeps_the_policy_threshold(
        tmp_path: Path, keys: object, images_dir: Path, entries_csv: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "appliance.toml"
    config.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
                      f'[watchlist]\ntrusted_keys_dir = "{keys.trusted_dir}"\n')  # type: ignore[attr-defined]
    now = time.time()
    assert main(["watchlist", "build", "--images", str(images_dir), "--entries", str(entries_csv),
                 "--deployment", "OP-CLI", "--valid-from", format_instant(now - 3600),
                 "--valid-until", format_instant(now + 8 * 3600), "--key", str(keys.private_path),  # type: ignore[attr-defined]
                 "--out", str(tmp_path / "stick" / "day.lfrw"), "--config", str(config)]) == 0
    cfg = ("--config", str(config))
    assert run(capsys, "deployment", "start", "--authority", "OP-CLI", "--officer", "PC A", "--location",
               "Market Sq", *cfg)[0] == 0
    code, out, err = run(capsys, "watchlist", "import", str(tmp_path / "stick"), *cfg)
    assert code == 0 and "operating point (budget)" in out and "threshold score 0.600" in out
    assert "false alerts per 10,000 tracks" in out and "WARNING" not in err


class _NullSender:
    def send(self, msg: object) -> bool:
        return True

    def close(self) -> None:
        pass
