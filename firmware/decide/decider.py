"""Per-track alert decisions: fuse a track's best faces; alert once per track, once per subject per cooldown.

The rule (also in docs/pipeline.md):

1. Only faces that passed the quality gate (size, sharpness, yaw; `firmware.embed.quality`) are embedded, so a
   blurred, tiny or turned face never counts at all.
2. A track keeps its best `max_shots` faces (embedding + quality score 0..1). A face is embedded only when the
   track needs it: while it has fewer than `min_shots` faces (at most one every `shot_gap_frames` frames), or
   when the face is clearly better than the best so far (`Track.is_better_shot`). Once it holds `min_shots`
   faces, its face is looked at again (aligned, quality-checked, perhaps embedded) only every `relook_frames`
   frames: a crowd standing in front of the van costs a face-mesh run per person per frame otherwise.
3. The track's probe is the quality-weighted fusion of its kept faces (`firmware.match.fusion.fuse`); its best
   watchlist match gives the calibrated 0..1 score.
4. It alerts when the score reaches `threshold` AND the evidence is enough: at least `min_shots` faces, or a
   single face whose score is far above the threshold (`single_shot_score`, default 0.9). So one lucky frame
   near the threshold never alerts; a second look is needed.
5. At most one alert per track; after it the track is decided and no more faces are embedded.
6. At most one alert per watchlist subject per `cooldown_s` seconds (across the camera's tracks; the hub
   applies the same cooldown across cameras). A track that matches a subject in cooldown is decided without
   an alert.

Tracks that alerted or matched a subject in cooldown are the only faces the preview may show unpixelated.
Pure logic: no I/O, no clock of its own (callers pass monotonic seconds), embeddings held only in memory and
forgotten when the track ends.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from firmware.match.fusion import fuse
from firmware.match.watchlist_index import Match


@dataclass(frozen=True)
class DecideParams:
    """Decision limits: scores are calibrated 0..1, counts are faces or frames, `cooldown_s` in seconds."""

    threshold: float = 0.6
    max_shots: int = 3
    min_shots: int = 2
    single_shot_score: float = 0.9
    shot_gap_frames: int = 2
    cooldown_s: float = 60.0
    relook_frames: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {self.threshold}")
        if not self.threshold <= self.single_shot_score <= 1.0:
            raise ValueError(f"single_shot_score must lie in [threshold, 1], got {self.single_shot_score}")
        if not 1 <= self.min_shots <= self.max_shots:
            raise ValueError(f"need 1 <= min_shots <= max_shots, got {self.min_shots} and {self.max_shots}")
        if self.shot_gap_frames < 1 or self.relook_frames < 1 or self.cooldown_s < 0:
            raise ValueError("shot_gap_frames and relook_frames must be >= 1 and cooldown_s >= 0")


class Outcome(enum.Enum):
    ALERT = "alert"          # raise an alert now
    WAIT = "wait"            # score reaches the threshold but the evidence is not enough yet
    BELOW = "below"          # best score below the threshold (or empty watchlist)
    COOLDOWN = "cooldown"    # would alert, but the subject alerted less than cooldown_s ago
    DECIDED = "decided"      # the track already alerted or was suppressed: nothing more to do


@dataclass(frozen=True, slots=True)
class Verdict:
    """What `decide` concluded for a track: outcome, best subject and its fused 0..1 score, faces fused."""

    outcome: Outcome
    subject_id: str | None = None
    score: float = 0.0
    shots: int = 0

    @property
    def is_alert(self) -> bool:
        return self.outcome is Outcome.ALERT


class SubjectCooldown:
    """When each subject last alerted; `is_cooling(subject, now)`: within `cooldown_s` seconds of it."""

    def __init__(self, cooldown_s: float) -> None:
        self.cooldown_s = cooldown_s
        self._last: dict[str, float] = {}

    def is_cooling(self, subject_id: str, now: float) -> bool:
        last = self._last.get(subject_id)
        return last is not None and now - last < self.cooldown_s

    def mark(self, subject_id: str, now: float) -> None:
        self._last[subject_id] = now

    def forget_all(self) -> None:
        """A new watchlist (or deployment) starts with no cooldowns."""
        self._last.clear()


@dataclass
class _TrackShots:
    embeddings: list[np.ndarray] = field(default_factory=list)
    qualities: list[float] = field(default_factory=list)
    last_shot_frame: int = -(10**9)
    last_look_frame: int = -(10**9)
    decided: bool = False
    shown_subject: str | None = None


class Decider:
    """The decision state of one camera's tracks (see the module docstring for the rule)."""

    def __init__(self, params: DecideParams | None = None) -> None:
        self.params = params if params is not None else DecideParams()
        self.cooldown = SubjectCooldown(self.params.cooldown_s)
        self._tracks: dict[int, _TrackShots] = {}

    def take_look(self, track_id: int, frame_index: int) -> bool:
        """Should this track's face be aligned and judged on this frame? Every frame until the track holds
        `min_shots` faces, then every `relook_frames` frames; never once decided. True records the look."""
        state = self._tracks.setdefault(track_id, _TrackShots())
        if state.decided or (len(state.embeddings) >= self.params.min_shots
                             and frame_index - state.last_look_frame < self.params.relook_frames):
            return False
        state.last_look_frame = frame_index
        return True

    def needs_shot(self, track_id: int, frame_index: int, *, better: bool) -> bool:
        """Should this track's current (quality-gated) face be embedded? `better`: `Track.is_better_shot`."""
        state = self._tracks.get(track_id)
        if state is None:
            return True
        if state.decided:
            return False
        if better:
            return True
        return (len(state.embeddings) < self.params.min_shots
                and frame_index - state.last_shot_frame >= self.params.shot_gap_frames)

    def add_shot(self, track_id: int, embedding: np.ndarray, quality: float, frame_index: int) -> np.ndarray:
        """Keep this face if it is among the track's best `max_shots`; return the track's fused probe."""
        state = self._tracks.setdefault(track_id, _TrackShots())
        state.last_shot_frame = frame_index
        if len(state.embeddings) < self.params.max_shots:
            state.embeddings.append(embedding)
            state.qualities.append(quality)
        else:
            worst = int(np.argmin(state.qualities))
            if quality > state.qualities[worst]:
                state.embeddings[worst] = embedding
                state.qualities[worst] = quality
        return fuse(state.embeddings, [max(q, 1e-3) for q in state.qualities])

    def decide(self, track_id: int, best: Match | None, now: float) -> Verdict:
        """Judge the track's fused probe, whose best watchlist match is `best`, at monotonic `now` (s)."""
        state = self._tracks.setdefault(track_id, _TrackShots())
        shots = len(state.embeddings)
        if state.decided:
            return Verdict(Outcome.DECIDED, state.shown_subject, best.score if best else 0.0, shots)
        if best is None or best.score < self.params.threshold:
            return Verdict(Outcome.BELOW, None, best.score if best else 0.0, shots)
        if shots < self.params.min_shots and best.score < self.params.single_shot_score:
            return Verdict(Outcome.WAIT, best.subject_id, best.score, shots)
        state.decided = True
        state.shown_subject = best.subject_id
        if self.cooldown.is_cooling(best.subject_id, now):
            return Verdict(Outcome.COOLDOWN, best.subject_id, best.score, shots)
        self.cooldown.mark(best.subject_id, now)
        return Verdict(Outcome.ALERT, best.subject_id, best.score, shots)

    def is_decided(self, track_id: int) -> bool:
        """True once the track alerted or matched a subject in cooldown: nothing more to embed for it."""
        state = self._tracks.get(track_id)
        return state is not None and state.decided

    def is_shown(self, track_id: int) -> bool:
        """True when the track matched a watchlist subject (alerted or in cooldown): preview may show it."""
        state = self._tracks.get(track_id)
        return state is not None and state.shown_subject is not None

    def end_track(self, track_id: int) -> None:
        """Forget a track's embeddings and decision (the track ended)."""
        self._tracks.pop(track_id, None)

    def reset(self) -> None:
        """Forget every track and cooldown (the watchlist changed or scanning stopped)."""
        self._tracks.clear()
        self.cooldown.forget_all()

    @property
    def tracks_held(self) -> int:
        """How many tracks have decision state (embeddings) in memory."""
        return len(self._tracks)
