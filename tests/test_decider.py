"""The decision rule: evidence before an alert, once per track, once per subject per cooldown."""

from __future__ import annotations

import numpy as np
import pytest

from firmware.decide.decider import DecideParams, Decider, Outcome
from firmware.match.watchlist_index import Match


def unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=192).astype(np.float32)
    return v / np.linalg.norm(v)


def m(score: float, subject: str = "S1") -> Match:
    return Match(subject, 0.5, score)


def test_single_shot_near_threshold_waits_for_a_second_look() -> None:
    d = Decider(DecideParams(threshold=0.6, min_shots=2, single_shot_score=0.9))
    d.add_shot(1, unit(0), 0.8, frame_index=0)
    assert d.decide(1, m(0.75), now=0.0).outcome is Outcome.WAIT
    d.add_shot(1, unit(1), 0.7, frame_index=2)
    v = d.decide(1, m(0.75), now=0.1)
    assert v.is_alert and v.subject_id == "S1" and v.shots == 2


def test_single_shot_far_above_threshold_alerts_at_once() -> None:
    d = Decider(DecideParams(single_shot_score=0.9))
    d.add_shot(1, unit(0), 0.8, 0)
    assert d.decide(1, m(0.93), 0.0).is_alert


def test_below_threshold_or_empty_watchlist_never_alerts() -> None:
    d = Decider()
    for i in range(5):
        d.add_shot(1, unit(i), 0.9, 2 * i)
        assert d.decide(1, m(0.59), float(i)).outcome is Outcome.BELOW
    assert d.decide(1, None, 9.0).outcome is Outcome.BELOW


def test_at_most_one_alert_per_track_and_no_more_embedding_after_it() -> None:
    d = Decider(DecideParams(cooldown_s=0.0))
    d.add_shot(7, unit(0), 0.8, 0)
    d.add_shot(7, unit(1), 0.8, 2)
    assert d.decide(7, m(0.8), 0.0).is_alert
    assert d.decide(7, m(0.99), 100.0).outcome is Outcome.DECIDED
    assert not d.needs_shot(7, 50, better=True)
    assert d.is_decided(7) and d.is_shown(7)


def test_cooldown_per_subject_across_tracks_then_alerts_again() -> None:
    d = Decider(DecideParams(cooldown_s=60.0, min_shots=1))
    d.add_shot(1, unit(0), 0.8, 0)
    assert d.decide(1, m(0.8, "S1"), 10.0).is_alert
    d.add_shot(2, unit(1), 0.8, 5)
    v = d.decide(2, m(0.8, "S1"), 69.0)
    assert v.outcome is Outcome.COOLDOWN and d.is_shown(2)
    d.add_shot(3, unit(2), 0.8, 6)
    assert d.decide(3, m(0.8, "S2"), 69.0).is_alert, "another subject is not held back"
    d.add_shot(4, unit(3), 0.8, 9)
    assert d.decide(4, m(0.8, "S1"), 70.0).is_alert, "cooldown over after 60 s"


def test_shots_wanted_until_min_shots_then_only_better_ones() -> None:
    d = Decider(DecideParams(min_shots=2, shot_gap_frames=2))
    assert d.needs_shot(1, 0, better=False)
    d.add_shot(1, unit(0), 0.5, 0)
    assert not d.needs_shot(1, 1, better=False), "gap of 2 frames between evidence shots"
    assert d.needs_shot(1, 2, better=False)
    d.add_shot(1, unit(1), 0.5, 2)
    assert not d.needs_shot(1, 10, better=False)
    assert d.needs_shot(1, 10, better=True)


def test_keeps_best_faces_and_fuses_them_weighted_by_quality() -> None:
    d = Decider(DecideParams(max_shots=2, min_shots=1))
    a, b, c = unit(0), unit(1), unit(2)
    d.add_shot(1, a, 0.2, 0)
    d.add_shot(1, b, 0.6, 1)
    probe = d.add_shot(1, c, 0.9, 2)   # replaces a, the worst
    expected = 0.6 * b + 0.9 * c
    np.testing.assert_allclose(probe, expected / np.linalg.norm(expected), atol=1e-6)
    probe = d.add_shot(1, a, 0.1, 3)   # worse than both: ignored
    np.testing.assert_allclose(probe, expected / np.linalg.norm(expected), atol=1e-6)


def test_end_track_forgets_its_embeddings() -> None:
    d = Decider()
    d.add_shot(1, unit(0), 0.8, 0)
    assert d.tracks_held == 1
    d.end_track(1)
    assert d.tracks_held == 0


@pytest.mark.parametrize("kwargs", [dict(threshold=1.0), dict(single_shot_score=0.5),
                                    dict(min_shots=4, max_shots=3), dict(shot_gap_frames=0)])
def test_nonsense_params_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DecideParams(**kwargs)  # type: ignore[arg-type]


def test_a_track_holding_its_shots_is_looked_at_every_relook_frames() -> None:
    d = Decider(DecideParams(min_shots=2, relook_frames=3))
    assert [d.take_look(1, i) for i in range(3)] == [True, True, True], "every frame until min_shots"
    d.add_shot(1, unit(0), 0.8, frame_index=0)
    d.add_shot(1, unit(1), 0.8, frame_index=2)
    assert [d.take_look(1, i) for i in range(3, 10)] == [False, False, True, False, False, True, False]
    d.decide(1, m(0.95), now=10.0)
    assert not d.take_look(1, 20), "never once decided"
    with pytest.raises(ValueError, match="relook_frames"):
        DecideParams(relook_frames=0)
