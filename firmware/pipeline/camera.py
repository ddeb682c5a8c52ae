"""One camera's pipeline on one frame: detect → track → quality gate → align → embed → match → decide.

`CameraPipeline.process(frame)` does the work of one frame and sends what may leave the process to the hub:
alert candidates (with the probe crop cut from the full-resolution frame), the pixelated preview now and then,
and (on `flush_stats`) counters and stage timings. Faces that match nothing leave nothing behind: their
aligned crops and embeddings live only in local variables and in the decider's memory until the track ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from firmware.capture.frame import Frame, lores_scale
from firmware.config import AppConfig
from firmware.decide.decider import DecideParams, Decider
from firmware.detect.blazeface import FaceDetector
from firmware.detect.detection import Detection
from firmware.embed.recognizer import Recognizer
from firmware.hardware.clock import Clock, SystemClock
from firmware.pipeline.channel import HubSender
from firmware.pipeline.imaging import Box, context_jpeg, preview_jpeg, probe_crop_jpeg
from firmware.pipeline.messages import AlertCandidate, PreviewFrame, StatsDelta
from firmware.pipeline.timing import StageTimings
from firmware.pipeline.watchlist_watch import ActiveWatchlist
from firmware.store.stats import PIPELINE_COUNTERS
from firmware.track.tracker import Track, Tracker, TrackerParams, TrackState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FrameReport:
    """What one frame did, returned to the caller in memory only (evaluation uses the boxes; the live loop
    drops the report): detections, each track seen this frame as (id, box, confirmed), and the alerts."""

    index: int
    detections: int
    tracks: tuple[tuple[int, Box, bool], ...]
    alerts: tuple[AlertCandidate, ...]


def decide_params(cfg: AppConfig) -> DecideParams:
    """The decision rule's limits from the configuration (`match.threshold`, `[pipeline]`)."""
    p = cfg.pipeline
    return DecideParams(threshold=cfg.match.threshold, max_shots=p.max_shots, min_shots=p.min_shots,
                        single_shot_score=max(p.single_shot_score, cfg.match.threshold),
                        shot_gap_frames=p.shot_gap_frames, cooldown_s=p.cooldown_s,
                        relook_frames=p.relook_frames)


class CameraPipeline:
    """The per-camera state (tracker, decider, counters, timings) and the per-frame work."""

    def __init__(self, camera: str, recognizer: Recognizer, cfg: AppConfig, sender: HubSender, *,
                 clock: Clock | None = None, tracker_params: TrackerParams | None = None) -> None:
        self.camera = camera
        self.recognizer = recognizer
        self.cfg = cfg
        self.sender = sender
        self.clock = clock or SystemClock()
        self.tracker = Tracker(tracker_params)
        det = recognizer.detector
        # the same model, run once per frame at the lower preview score: faces scoring between it and
        # detect.min_score are not tracked or embedded, only pixelated in the preview
        self._detector = FaceDetector(det.model, min_score=min(cfg.pipeline.preview_min_score, det.min_score),
                                      nms_iou=det.nms_iou, min_face_px=det.min_face_px)
        self.decider = Decider(decide_params(cfg))
        self.timings = StageTimings()
        self.total_timings = StageTimings()
        self._unsent_timings = StageTimings()  # of deltas the channel dropped: sent with the next one
        self._counts = dict.fromkeys(PIPELINE_COUNTERS, 0)
        self.totals = dict.fromkeys(PIPELINE_COUNTERS, 0)
        self.alerts_sent = 0
        self._faces_seen_reported = 0
        self._watchlist: ActiveWatchlist | None = None
        self._next_preview = float("-inf")
        self._frame_faces: list[Box] = []

    @property
    def watchlist(self) -> ActiveWatchlist | None:
        return self._watchlist

    @property
    def is_scanning(self) -> bool:
        return self._watchlist is not None

    def set_watchlist(self, active: ActiveWatchlist | None) -> None:
        """Swap the watchlist between frames; None stops scanning and forgets every track and decision.

        A list whose import raised the threshold to hold the false-alert budget (`match.policy = "budget"`)
        is judged at that threshold (and single-shot score), never below the configured ones."""
        if active is None and self._watchlist is not None:
            self.tracker.close_all()
            self.decider.reset()
        if active is not None and (self._watchlist is None or active.version != self._watchlist.version):
            base = decide_params(self.cfg)
            threshold = max(base.threshold, active.threshold_score or 0.0)
            single = max(base.single_shot_score, active.single_shot_score or 0.0, threshold)
            if (threshold, single) != (self.decider.params.threshold, self.decider.params.single_shot_score):
                self.decider.params = replace(base, threshold=threshold, single_shot_score=min(single, 1.0))
                log.info("camera %s: watchlist %s judged at score %.3f (single shot %.3f) for its size",
                         self.camera, active.version, threshold, single)
        self._watchlist = active

    def count(self, name: str, n: int = 1) -> None:
        self._counts[name] += n
        self.totals[name] += n

    def process(self, frame: Frame) -> FrameReport:
        """Run every stage on `frame`; refuses (returns an empty report) when no watchlist is loaded."""
        active = self._watchlist
        if active is None:
            return FrameReport(frame.index, 0, (), ())
        with self.timings.measure("frame"):
            with self.timings.measure("detect"):
                detections, doubtful = self._detect(frame)
            with self.timings.measure("track"):
                step = self.tracker.update(detections)
            for track in step.ended:
                self.decider.end_track(track.id)
            # every face box of this frame, for an alert's context frame (all but its subject pixelated)
            self._frame_faces = [d.box for _, d in step.matched] + [d.box for d in doubtful] + [
                t.predicted_box() for t in self.tracker.tracks
                if t.state is TrackState.LOST and t.detection is not None]
            alerts = [a for track, det in step.confirmed
                      if (a := self._look(frame, track, det, active)) is not None]
            seen = self.tracker.stats.faces_seen
            self.count("frames")
            self.count("faces_detected", len(detections))
            self.count("faces_seen", seen - self._faces_seen_reported)
            self._faces_seen_reported = seen
            self._maybe_preview(frame, step.matched, doubtful)
        return FrameReport(frame.index, len(detections),
                           tuple((t.id, d.box, t.is_confirmed) for t, d in step.matched), tuple(alerts))

    def _detect(self, frame: Frame) -> tuple[list[Detection], list[Detection]]:
        """(faces to track, faces only to pixelate): one inference at the lower preview score, split."""
        if frame.lores is not None:
            sx, sy = lores_scale(frame)
            found = [d.scaled(sx, sy) for d in self._detector.detect(frame.lores)]
        else:
            p = self.cfg.pipeline
            if (p.tiles_cols, p.tiles_rows) != (1, 1) and frame.image.shape[1] >= p.tile_min_width:
                found = self._detector.detect_tiled(frame.image, (p.tiles_cols, p.tiles_rows))
            else:
                found = self._detector.detect(frame.image)
        keep = self.cfg.detect.min_score
        return [d for d in found if d.score >= keep], [d for d in found if d.score < keep]

    def _look(self, frame: Frame, track: Track, det: Detection,
              active: ActiveWatchlist) -> AlertCandidate | None:
        """Quality-gate, embed and judge one confirmed track's face; the alert candidate if it alerts."""
        if self.decider.is_decided(track.id):
            return None
        # The same decisions as below, taken first on the best score this face could reach: a face too small
        # or turned, or one that cannot beat its track's shots, is not meshed and aligned every frame.
        ceiling = self.recognizer.best_possible(det)
        if ceiling is None or not self.decider.needs_shot(track.id, frame.index,
                                                          better=track.is_better_shot(ceiling)):
            return None
        if not self.decider.take_look(track.id, frame.index):
            return None
        with self.timings.measure("align"):
            face = self.recognizer.face(frame.image, det)
        if not face.quality.ok:
            return None
        quality = face.quality.score
        if not self.decider.needs_shot(track.id, frame.index, better=track.is_better_shot(quality)):
            return None
        with self.timings.measure("embed"):
            embedding = self.recognizer.embed(face)
        self.count("embeddings")
        track.record_shot(quality)
        with self.timings.measure("match"):
            probe = self.decider.add_shot(track.id, embedding, quality, frame.index)
            best = active.index.best(probe)
        with self.timings.measure("decide"):
            verdict = self.decider.decide(track.id, best, frame.t_mono)
        if not verdict.is_alert or verdict.subject_id is None:
            return None
        candidate = AlertCandidate(
            camera=self.camera, track_id=track.id, subject_id=verdict.subject_id, score=verdict.score,
            shots=verdict.shots, t_wall=frame.t_wall, t_mono=frame.t_mono, frame_index=frame.index,
            watchlist_version=active.version,
            probe_jpeg=probe_crop_jpeg(frame.image, det.box, self.cfg.pipeline.probe_margin),
            context_jpeg=context_jpeg(frame.image, det.box, [b for b in self._frame_faces if b != det.box],
                                      width=self.cfg.pipeline.preview_width,
                                      blocks=self.cfg.pipeline.pixel_blocks))
        self.sender.send(candidate)
        self.alerts_sent += 1
        log.info("camera %s: track %d matched a watchlist subject; alert candidate sent to the hub",
                 self.camera, track.id)
        return candidate

    def _maybe_preview(self, frame: Frame, matched: tuple[tuple[Track, Detection], ...],
                       doubtful: list[Detection]) -> None:
        p = self.cfg.pipeline
        if p.preview_fps <= 0 or frame.t_mono < self._next_preview:
            return
        self._next_preview = frame.t_mono + 1.0 / p.preview_fps
        with self.timings.measure("preview"):
            shown = [d.box for t, d in matched if self.decider.is_shown(t.id)]
            hidden = [d.box for t, d in matched if not self.decider.is_shown(t.id)]
            hidden += [d.box for d in doubtful]  # too unsure to track, not too unsure to hide
            # a face the detector missed this frame cannot be found; where a lost track should be is hidden
            hidden += [t.predicted_box() for t in self.tracker.tracks
                       if t.state is TrackState.LOST and t.detection is not None]
            jpeg, w, h = preview_jpeg(frame.image, hidden, shown, width=p.preview_width,
                                      blocks=p.pixel_blocks)
            self.sender.send(PreviewFrame(self.camera, frame.t_wall, w, h, jpeg))

    def flush_stats(self, dropped_frames: int = 0) -> StatsDelta:
        """Send the counters and timings gathered since the last flush (plus `dropped_frames`) to the hub.

        A delta the channel drops (hub busy, queue full) is not lost: its counts and timings go back into the
        next one, so the report's faces seen and frames add up however busy the hub was.
        """
        self.count("dropped_frames", dropped_frames)
        counts, self._counts = self._counts, dict.fromkeys(PIPELINE_COUNTERS, 0)
        fresh = self.timings.take()
        self.total_timings.merge(fresh)
        unsent, self._unsent_timings = self._unsent_timings, StageTimings()
        unsent.merge(fresh)
        timings = unsent.take()
        delta = StatsDelta(self.camera, self.clock.time(), counts, timings, self.is_scanning)
        if not self.sender.send(delta):
            for name, n in counts.items():
                self._counts[name] += n
            self._unsent_timings.merge(timings)
        return delta
