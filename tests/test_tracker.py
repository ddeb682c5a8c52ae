"""The tracker on synthetic detection sequences: one person walking past is one track, two people are two."""

from __future__ import annotations

import time

import numpy as np
import pytest

from firmware.detect.detection import Detection
from firmware.track.tracker import Track, Tracker, TrackerParams, TrackState


def face(cx: float, cy: float, w: float, yaw: float = 0.0) -> Detection:
    """A face box of width `w` pixels centred at (cx, cy) with BlazeFace-ordered keypoints; yaw in -1..1."""
    h = 1.15 * w
    e = 0.4 * w
    shift = yaw * 0.25 * w
    kp = np.array([[cx - e / 2 + shift, cy - 0.12 * h], [cx + e / 2 + shift, cy - 0.12 * h],
                   [cx + 1.5 * shift, cy + 0.05 * h], [cx + shift, cy + 0.25 * h],
                   [cx - 0.48 * w, cy], [cx + 0.48 * w, cy]], np.float32)
    return Detection((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), 0.9, kp)


def run(tracker: Tracker, frames: list[list[Detection]]) -> list[list[tuple[Track, Detection]]]:
    return [list(tracker.update(dets).matched) for dets in frames]


def test_one_person_walking_past_is_one_track() -> None:
    rng = np.random.default_rng(1)
    frames = [[face(40 + 10 * i + rng.normal(0, 2), 300 + rng.normal(0, 2), 50 + 0.5 * i)] for i in range(60)]
    tracker = Tracker()
    steps = run(tracker, frames)
    assert tracker.stats.faces_seen == 1
    assert len({t.id for step in steps for t, _ in step}) == 1
    assert not tracker.update([]).ended and tracker.tracks[0].state is TrackState.LOST


def test_two_people_side_by_side_are_two_tracks() -> None:
    rng = np.random.default_rng(2)
    frames = [[face(200 + 8 * i + rng.normal(0, 1.5), 300, 60),
               face(270 + 8 * i + rng.normal(0, 1.5), 305, 58)]
              for i in range(40)]
    tracker = Tracker()
    steps = run(tracker, frames)
    assert tracker.stats.faces_seen == 2
    by_track: dict[int, list[float]] = {}
    for step in steps:
        for t, d in step:
            by_track.setdefault(t.id, []).append(d.center[1])
    assert len(by_track) == 2
    # each track kept its own person: the two keep their own height in the frame throughout
    assert sorted(round(float(np.mean(v))) for v in by_track.values()) == [300, 305]


def test_people_crossing_keep_their_tracks_through_an_occlusion() -> None:
    """A walks right, B walks left; while A passes in front of B only A's face is detected."""
    frames = []
    for i in range(50):
        xa, xb = 100 + 10 * i, 590 - 10 * i
        dets = [face(xa, 300, 70)]
        if abs(xa - xb) > 70:
            dets.append(face(xb, 305, 60))
        frames.append(dets)
    tracker = Tracker()
    steps = run(tracker, frames)
    xs: dict[int, list[float]] = {}
    for step in steps:
        for t, d in step:
            xs.setdefault(t.id, []).append(d.center[0])
    assert tracker.stats.faces_seen == 2 and len(xs) == 2
    a, b = sorted(xs.values(), key=lambda v: v[0])
    assert np.all(np.diff(a) > 0) and np.all(np.diff(b) < 0)  # nobody swapped identity at the crossing
    assert a[-1] > 550 and b[-1] < 150


def test_short_gap_continues_the_track_a_long_one_starts_a_new_passing() -> None:
    def walk(gap: range) -> Tracker:
        tracker = Tracker(TrackerParams(max_misses=15))
        for i in range(60):
            tracker.update([] if i in gap else [face(50 + 6 * i, 300, 60)])
        return tracker

    assert walk(range(20, 30)).stats.faces_seen == 1
    assert walk(range(20, 40)).stats.faces_seen == 2


def test_single_frame_noise_is_not_a_face_seen() -> None:
    rng = np.random.default_rng(3)
    tracker = Tracker()
    for _ in range(30):
        tracker.update([face(*rng.uniform(50, 600, 2), 40)])
        tracker.update([])
    assert tracker.stats.faces_seen == 0 and tracker.stats.tentative_dropped == 30 and not tracker.tracks


def test_a_face_of_another_scale_or_layout_does_not_join_the_track() -> None:
    base = [[face(300 + 2 * i, 300, 90)] for i in range(5)]
    for other in (face(310, 300, 30), face(310, 300, 90, yaw=3.0)):
        tracker = Tracker()
        steps = run(tracker, base + [[other]])
        first, last = steps[0][0][0], steps[-1][0][0]
        assert first is not last and last.state is TrackState.TENTATIVE


def test_lifecycle_and_no_face_data_after_the_end() -> None:
    tracker = Tracker(TrackerParams(confirm_hits=3, max_misses=2))
    states = []
    ended: list[Track] = []
    for dets in [[face(100, 100, 60)]] * 3 + [[]] + [[face(100, 100, 60)]] + [[]] * 3:
        step = tracker.update(dets)
        ended.extend(step.ended)
        track = step.matched[0][0] if step.matched else (tracker.tracks[0] if tracker.tracks else None)
        states.append(track.state if track else None)
    assert states == [TrackState.TENTATIVE, TrackState.TENTATIVE, TrackState.CONFIRMED, TrackState.LOST,
                      TrackState.CONFIRMED, TrackState.LOST, TrackState.LOST, None]
    assert len(ended) == 1 and ended[0].state is TrackState.ENDED and ended[0].detection is None
    assert not tracker.tracks and tracker.stats.faces_seen == 1 and tracker.stats.active == 0


def test_best_shot_bookkeeping() -> None:
    track = Tracker().update([face(100, 100, 60)]).matched[0][0]
    assert track.best_quality == 0.0 and track.is_better_shot(0.4)
    track.record_shot(0.4)
    assert not track.is_better_shot(0.42) and track.is_better_shot(0.5)
    track.record_shot(0.3)
    assert track.best_quality == 0.4 and track.shots == 2


def test_twenty_faces_a_frame_is_fast_and_each_is_one_track() -> None:
    rng = np.random.default_rng(4)
    starts = [(60 + 110 * (k % 5), 60 + 120 * (k // 5)) for k in range(20)]
    tracker = Tracker()
    t0 = time.thread_time()  # CPU time of this thread: steady on a loaded CI machine
    for i in range(300):
        jitter = rng.normal(0, 1.5, (20, 2))
        tracker.update([face(x + 1.5 * i + jx, y + jy, 50)
                        for (x, y), (jx, jy) in zip(starts, jitter, strict=True)])
    per_frame_ms = (time.thread_time() - t0) / 300 * 1000
    assert tracker.stats.faces_seen == 20 and tracker.stats.active == 20
    assert per_frame_ms < 5, f"{per_frame_ms:.2f} ms per frame for 20 faces"


@pytest.mark.parametrize("n", [0, 1])
def test_empty_frames_are_harmless(n: int) -> None:
    tracker = Tracker()
    for _ in range(3):
        step = tracker.update([face(10, 10, 20)] * n)
    assert len(step.matched) == n and tracker.stats.faces_seen == n
