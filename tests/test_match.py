"""Matching: exact top-k over the watchlist matrix, the calibrated score, fusion, and error metrics."""

from __future__ import annotations

import numpy as np
import pytest

from firmware.errors import DataError, ModelError
from firmware.eval.metrics import best_threshold, fold_accuracy, tar_at_far, top_impostor_scores, wilson
from firmware.match.fusion import fuse
from firmware.match.score import ScoreCalibration, load_calibration
from firmware.match.watchlist_index import WatchlistIndex

CAL = ScoreCalibration(slope=20.0, cosine_at_threshold=0.4)


def unit(rng: np.random.Generator, n: int, d: int = 192) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_top_k_equals_brute_force() -> None:
    rng = np.random.default_rng(1)
    emb = unit(rng, 5000)
    index = WatchlistIndex([f"s{i}" for i in range(5000)], emb, CAL)
    for probe in unit(rng, 20):
        found = index.search(probe, k=5)
        expect = np.argsort(-(emb @ probe))[:5]
        assert [m.subject_id for m in found] == [f"s{i}" for i in expect]
        assert found[0].cosine >= found[-1].cosine


def test_top_k_is_exact_among_near_duplicates() -> None:
    """Rows closer to each other than the int8 step tie in the int8 scan; the float32 re-scoring must still
    return the exact float32 order (a fixed number of re-scored candidates got this wrong)."""
    rng = np.random.default_rng(2)
    base = unit(rng, 1)[0]
    near = base + rng.standard_normal((300, 192)).astype(np.float32) * np.float32(5e-3)
    emb = np.concatenate([unit(rng, 20_000), near / np.linalg.norm(near, axis=1, keepdims=True)])
    index = WatchlistIndex([f"s{i}" for i in range(len(emb))], emb, CAL)
    for probe in (base, *unit(rng, 5)):
        for k in (1, 3, 10):
            found = index.search(probe, k=k)
            expect = np.argsort(-(emb @ probe), kind="stable")[:k]
            assert [m.subject_id for m in found] == [f"s{i}" for i in expect]
            assert [m.cosine for m in found] == pytest.approx([float(emb[i] @ probe) for i in expect], abs=1e-6)


def test_search_many_equals_search_and_k_beyond_the_list() -> None:
    rng = np.random.default_rng(3)
    emb = unit(rng, 3000)
    index = WatchlistIndex([f"s{i}" for i in range(3000)], emb, CAL)
    probes = np.concatenate([emb[:4] + 0.05 * unit(rng, 4), unit(rng, 4)])
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    assert index.search_many(probes, k=3) == [index.search(p, k=3) for p in probes]
    small = WatchlistIndex(["a", "b"], emb[:2], CAL)
    assert [m.subject_id for m in small.search(emb[1], k=5)] == ["b", "a"]
    assert index.scan_bytes == 3000 * 192  # int8: a quarter of the float32 matrix


def test_index_refuses_bad_rows() -> None:
    with pytest.raises(DataError, match="one embedding row per subject"):
        WatchlistIndex(["a"], np.zeros((2, 192), np.float32), CAL)
    with pytest.raises(DataError, match="L2-normalised"):
        WatchlistIndex(["a"], np.full((1, 192), 3.0, np.float32), CAL)
    assert WatchlistIndex([], np.empty((0, 192), np.float32), CAL).search(np.ones(192, np.float32)) == []


def test_score_is_monotonic_and_meets_threshold_at_operating_point() -> None:
    cos = np.linspace(-1, 1, 201)
    s = CAL.score(cos)
    assert np.all(np.diff(s) > 0) and s.min() >= 0 and s.max() <= 1
    assert float(CAL.score(0.4)) == pytest.approx(0.6)
    assert CAL.cosine(0.8) == pytest.approx(float(cos[np.argmin(np.abs(s - 0.8))]), abs=0.01)


def test_missing_calibration_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ModelError, match="run `lfr eval calibrate`"):
        load_calibration(tmp_path)
    (tmp_path / "calibration.toml").write_text("slope = 'x'\n")
    with pytest.raises(ModelError, match="malformed"):
        load_calibration(tmp_path)


def test_fusion_weights_and_normalises() -> None:
    a, b = np.eye(3, dtype=np.float32)[:2]
    f = fuse([a, b], [3.0, 1.0])
    assert np.linalg.norm(f) == pytest.approx(1.0)
    assert f[0] > f[1] > 0
    with pytest.raises(ValueError):
        fuse(np.empty((0, 3)))


def test_metrics_on_known_scores() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(50, 100)
    assert lo < 0.5 < hi and hi - lo < 0.2
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    same = np.array([False, False, False, True, True, True])
    assert 0.3 < best_threshold(scores, same) < 0.7
    acc, std, _ = fold_accuracy(np.tile(scores, 2), np.tile(same, 2), np.repeat([0, 1], 6))
    assert acc == 1.0 and std == 0.0
    genuine, impostor = np.array([0.5, 0.6, 0.95]), np.array([0.1] * 99 + [0.9])
    tar, t = tar_at_far(genuine, impostor, 0.01)  # one impostor in 100 may pass: threshold just above 0.1
    assert tar == 1.0 and 0.1 < t < 0.11
    tar, t = tar_at_far(genuine, impostor, 0.005)  # none may pass: threshold just above 0.9
    assert tar == pytest.approx(1 / 3) and 0.9 < t < 0.95
    emb = np.eye(4, dtype=np.float32)
    top, total = top_impostor_scores(emb, ["a", "a", "b", "c"], keep=3)
    assert total == 5 and len(top) == 3
