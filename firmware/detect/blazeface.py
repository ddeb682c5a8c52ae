"""BlazeFace full-range: letterbox a frame to 192×192, run the model, decode anchors, weighted NMS.

The full-range model has one feature layer of stride 4: a 48×48 grid with one anchor per cell (2304 in all),
each regressing a box centre and size and six keypoints in pixels of the 192×192 input, plus one logit.
Letterboxing keeps the aspect ratio so faces are not squashed; `pad` adds a border (as a fraction of the
longer side) so a face that fills the picture, as watchlist photos often do, is still found.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from firmware.accel.runtime import Model
from firmware.detect.detection import Detection
from firmware.errors import DataError, ModelError

INPUT_SIZE = 192
GRID = 48
NUM_ANCHORS = GRID * GRID
NUM_KEYPOINTS = 6
SCORE_CLIP = 100.0


def _anchors() -> np.ndarray:
    """Anchor centres (2304×2) in 0..1 of the input, row-major like the model's output."""
    c = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    xs, ys = np.meshgrid(c, c)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


ANCHORS = _anchors()


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame maps into the 192×192 input: input = frame * scale + offset (pixels)."""

    scale: float
    offset_x: float
    offset_y: float

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """Input-pixel coordinates (…×2) back to frame pixels."""
        return (xy - np.array([self.offset_x, self.offset_y], dtype=np.float32)) / self.scale


def letterbox(image_bgr: np.ndarray, pad: float = 0.0) -> tuple[np.ndarray, Letterbox]:
    """The model's float input (1×192×192×3 RGB in −1..1) and the mapping back to the frame."""
    _check_image(image_bgr)
    h, w = image_bgr.shape[:2]
    scale = INPUT_SIZE / (max(h, w) * (1.0 + 2.0 * pad))
    return _centred(_scaled(image_bgr, scale), scale, 0, 0)


def _scaled(image_bgr: np.ndarray, scale: float) -> np.ndarray:
    """`image_bgr` resized by `scale` (area averaging when shrinking, so small faces keep their detail)."""
    h, w = image_bgr.shape[:2]
    return cv2.resize(image_bgr, (max(1, round(w * scale)), max(1, round(h * scale))),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _check_image(image_bgr: np.ndarray) -> None:
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise DataError(f"expected an H×W×3 uint8 BGR image, got shape {image_bgr.shape} {image_bgr.dtype}")


def _centred(small: np.ndarray, scale: float, x0: int, y0: int) -> tuple[np.ndarray, Letterbox]:
    """`small` (already scaled by `scale`; its top-left at (`x0`, `y0`) of the scaled frame) centred in the
    192×192 input, black around it (−1, as MediaPipe pads), and the mapping back to the frame."""
    nh, nw = small.shape[:2]
    ox, oy = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
    canvas[oy:oy + nh, ox:ox + nw] = small
    tensor = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32)[np.newaxis]
    tensor *= np.float32(1.0 / 127.5)
    tensor -= np.float32(1.0)
    return tensor, Letterbox(scale, float(ox - x0), float(oy - y0))


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray,
                 iou_threshold: float) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's weighted NMS: each cluster of overlapping boxes becomes their score-weighted mean."""
    order = np.argsort(-scores)
    remaining = order
    out: list[tuple[np.ndarray, float, np.ndarray]] = []
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while remaining.size:
        top = remaining[0]
        x1 = np.maximum(boxes[top, 0], boxes[remaining, 0])
        y1 = np.maximum(boxes[top, 1], boxes[remaining, 1])
        x2 = np.minimum(boxes[top, 2], boxes[remaining, 2])
        y2 = np.minimum(boxes[top, 3], boxes[remaining, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        ious = inter / np.maximum(areas[top] + areas[remaining] - inter, 1e-9)
        cluster = remaining[ious > iou_threshold]
        if cluster.size == 0:
            cluster = remaining[:1]
        w = scores[cluster][:, None]
        box = (boxes[cluster] * w).sum(0) / w.sum()
        kps = (keypoints[cluster] * w[:, :, None]).sum(0) / w.sum()
        out.append((box, float(scores[top]), kps))
        remaining = remaining[ious <= iou_threshold]
    return out


class FaceDetector:
    """Finds faces in a BGR frame with BlazeFace full-range; boxes and keypoints in frame pixels."""

    def __init__(self, model: Model, *, min_score: float = 0.6, nms_iou: float = 0.3,
                 min_face_px: float = 24.0) -> None:
        shapes = [s.shape for s in model.outputs]
        if model.inputs[0].shape != (1, INPUT_SIZE, INPUT_SIZE, 3) or sorted(shapes) != sorted(
                [(1, NUM_ANCHORS, 16), (1, NUM_ANCHORS, 1)]):
            raise ModelError(f"{model.path.name} is not a BlazeFace full-range model "
                             f"(input {model.inputs[0].shape}, outputs {shapes})")
        self.model = model
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.min_face_px = min_face_px
        self._reg = next(i for i, s in enumerate(model.outputs) if s.shape[-1] == 16)
        self._logit_min = float(np.log(min_score / (1.0 - min_score)))

    def detect(self, image_bgr: np.ndarray, pad: float = 0.0) -> list[Detection]:
        """Every face scoring at least `min_score` and at least `min_face_px` wide, best first."""
        tensor, lb = letterbox(image_bgr, pad)
        return self._faces(tensor, lb, image_bgr.shape[:2])

    def _faces(self, tensor: np.ndarray, lb: Letterbox, frame_hw: tuple[int, ...]) -> list[Detection]:
        """Run the model on one letterboxed input and decode its faces into frame pixels."""
        outputs = self.model.run(tensor)
        raw = outputs[self._reg][0]
        logits = outputs[1 - self._reg][0, :, 0]
        keep = np.nonzero(np.clip(logits, -SCORE_CLIP, SCORE_CLIP) >= self._logit_min)[0]
        if keep.size == 0:
            return []
        raw = raw[keep]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -SCORE_CLIP, SCORE_CLIP)))
        anchors = ANCHORS[keep] * INPUT_SIZE
        centre = anchors + raw[:, 0:2]
        half = raw[:, 2:4] / 2.0
        boxes = np.concatenate([lb.to_frame(centre - half), lb.to_frame(centre + half)], axis=1)
        kps = lb.to_frame(anchors[:, None, :] + raw[:, 4:16].reshape(-1, NUM_KEYPOINTS, 2))
        h, w = frame_hw[:2]
        faces = []
        for box, score, kp in weighted_nms(boxes, scores, kps, self.nms_iou):
            x1, y1, x2, y2 = (float(v) for v in box)
            if min(x2 - x1, y2 - y1) < self.min_face_px or x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
                continue
            faces.append(Detection((x1, y1, x2, y2), score, kp.astype(np.float32)))
        return faces

    def detect_tiled(self, image_bgr: np.ndarray, tiles: tuple[int, int] = (1, 1),
                     overlap: float = 0.25) -> list[Detection]:
        """Detect on a grid of overlapping tiles (cols, rows) and merge, for small faces in large frames.

        Letterboxing a 1920-pixel frame into 192 shrinks a 60-pixel face to 6 pixels, below what BlazeFace
        finds; a 3×2 grid keeps it near 20. Duplicates across tiles are merged by the same weighted NMS.
        """
        cols, rows = tiles
        if cols == rows == 1:
            return self.detect(image_bgr)
        _check_image(image_bgr)
        h, w = image_bgr.shape[:2]
        tw, th = w / (cols - (cols - 1) * overlap), h / (rows - (rows - 1) * overlap)
        # Every tile has the same letterbox scale, so the frame is scaled down once (the tiles overlap: scaling
        # each one alone resampled a quarter of the frame twice or more) and the tiles are cut from that.
        scale = INPUT_SIZE / max(tw, th)
        small = _scaled(image_bgr, scale)
        sh, sw = small.shape[:2]
        tsw, tsh = round(tw * scale), round(th * scale)
        found: list[Detection] = []
        for r in range(rows):
            for c in range(cols):
                x0, y0 = round(c * tw * (1 - overlap) * scale), round(r * th * (1 - overlap) * scale)
                x1, y1 = min(sw, x0 + tsw), min(sh, y0 + tsh)
                tensor, lb = _centred(small[y0:y1, x0:x1], scale, x0, y0)
                found.extend(self._faces(tensor, lb, (h, w)))
        if len(found) < 2:
            return found
        boxes = np.array([d.box for d in found], np.float32)
        merged = weighted_nms(boxes, np.array([d.score for d in found], np.float32),
                              np.stack([d.keypoints for d in found]), self.nms_iou)
        return [Detection((float(b[0]), float(b[1]), float(b[2]), float(b[3])), s, k.astype(np.float32))
                for b, s, k in merged]
