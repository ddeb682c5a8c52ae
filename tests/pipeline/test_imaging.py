"""What leaves the camera process as pixels: unmatched faces pixelated in the preview, the probe crop."""

from __future__ import annotations

import cv2
import numpy as np

from firmware.pipeline.imaging import expand, preview_jpeg, probe_crop_jpeg


def _noise(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _colours(image: np.ndarray, box: tuple[int, int, int, int]) -> int:
    x1, y1, x2, y2 = box
    return len(np.unique(image[y1:y2, x1:x2].reshape(-1, 3), axis=0))


def test_hidden_faces_are_blocks_shown_faces_are_not() -> None:
    frame = _noise(720, 1280)
    hidden, shown = (100.0, 100.0, 400.0, 400.0), (800.0, 200.0, 1100.0, 500.0)
    jpeg, w, h = preview_jpeg(frame, [hidden], [shown], width=640, blocks=6)
    assert (w, h) == (640, 360)
    small = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert small.shape == (360, 640, 3)
    # inside the hidden box (scaled by 0.5, inset from block edges and JPEG ringing): nearly flat blocks
    flat = small[60:190, 60:190].astype(np.float32)
    blocks = cv2.resize(cv2.resize(flat, (6, 6), interpolation=cv2.INTER_AREA), (130, 130),
                        interpolation=cv2.INTER_NEAREST)
    assert np.abs(flat - blocks).mean() < 3.0
    # the shown face keeps its detail (noise), so the same measure is large there
    detail = small[110:240, 410:540].astype(np.float32)
    coarse = cv2.resize(cv2.resize(detail, (6, 6), interpolation=cv2.INTER_AREA), (130, 130),
                        interpolation=cv2.INTER_NEAREST)
    assert np.abs(detail - coarse).mean() > 15.0


def test_pixelation_covers_a_margin_around_the_box() -> None:
    frame = _noise(400, 400)
    jpeg, _, _ = preview_jpeg(frame, [(150.0, 150.0, 250.0, 250.0)], [], width=400, blocks=4)
    small = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE).astype(np.float32)
    x1, y1, x2, y2 = expand((150.0, 150.0, 250.0, 250.0), 0.25, 400, 400)
    assert (x1, y1, x2, y2) == (125, 125, 275, 275)
    region = small[y1 + 4:y2 - 4, y1 + 4:x2 - 4]
    assert region.std() < frame.std()  # a few flat blocks, not noise


def test_probe_crop_is_cut_from_the_full_frame_with_margin() -> None:
    frame = _noise(1080, 1920)
    jpeg = probe_crop_jpeg(frame, (1000.0, 500.0, 1100.0, 620.0), margin=0.5)
    crop = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape[:2] == (240, 200)
    edge = probe_crop_jpeg(frame, (1880.0, 1040.0, 1950.0, 1100.0), margin=0.0)
    assert cv2.imdecode(np.frombuffer(edge, np.uint8), cv2.IMREAD_COLOR).shape[:2] == (40, 40)
