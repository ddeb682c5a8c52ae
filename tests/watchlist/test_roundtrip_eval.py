"""The round-trip evaluation behind the TPIR figure runs end to end (on a handful of LFW people here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware.eval.roundtrip import run
from firmware.match.score import ScoreCalibration
from firmware.watchlist.enrol import RecognizerEnroller


@pytest.mark.slow
def test_round_trip_eval_on_a_few_people(lfw_dir: Path, tmp_path: Path, enroller: RecognizerEnroller,
                                         calibration: ScoreCalibration) -> None:
    r = run(lfw_dir / "images", tmp_path / "work", enroller, calibration, subjects=6, max_probes=2)
    assert r.subjects == 6 and r.accepted + sum(r.rejected.values()) == 6
    assert r.impostor_probes == 6 and 0 < r.probes <= 12 and r.enrolled_probes <= r.probes
    assert 0.0 <= r.fpir <= r.tpir_enrolled <= 1.0 and r.found >= 1
    assert (tmp_path / "work" / "lfr.sqlite3").exists()
