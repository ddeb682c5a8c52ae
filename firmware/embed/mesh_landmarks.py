"""Alignment keypoints from MediaPipe's 468-point face mesh (`face_landmark.tflite`) instead of BlazeFace's.

The mesh model sees a 192×192 region of interest cut as MediaPipe cuts it from a detection: a square around
the detection box, 1.5× its longer side, rotated so that the two BlazeFace eyes are level. Its 468 points
(ROI pixels) are mapped back to the frame and reduced to the keypoints `align_face` uses, in BlazeFace's
order (`firmware.detect.detection`): eye centres (mean of each eye's 16 contour points), nose tip, mouth
centre (mean of the two mouth corners, as the template's), and the mesh's cheek points by the ears.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import cv2
import numpy as np

from firmware.accel.runtime import Model
from firmware.detect.detection import LEFT_EAR, LEFT_EYE, MOUTH, NOSE, RIGHT_EAR, RIGHT_EYE, Detection
from firmware.errors import DataError, ModelError

log = logging.getLogger(__name__)

ROI_SIZE = 192
ROI_SCALE = 1.5
MESH_POINTS = 468
# Mesh indices; "right" is the person's right (the left of the image), as BlazeFace's RIGHT_EYE.
RIGHT_EYE_CONTOUR = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
LEFT_EYE_CONTOUR = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
NOSE_TIP = 1
MOUTH_CORNERS = (61, 291)
RIGHT_CHEEK, LEFT_CHEEK = 234, 454
# Face-presence logit below which the mesh is not trusted and BlazeFace's keypoints are kept (sigmoid 0.5).
MIN_PRESENCE_LOGIT = 0.0


def roi_transform(det: Detection) -> np.ndarray:
    """The 2×3 affine map from frame pixels to the 192×192 mesh input for `det` (MediaPipe's face ROI)."""
    kp = np.asarray(det.keypoints, dtype=np.float64)
    if kp.shape != (6, 2) or not np.all(np.isfinite(kp)):
        raise DataError(f"detection keypoints must be a finite 6×2 array, got shape {kp.shape}")
    side = max(det.width, det.height) * ROI_SCALE
    if not side > 0:
        raise DataError(f"detection box {det.box} is empty")
    dx, dy = kp[LEFT_EYE] - kp[RIGHT_EYE]
    angle = math.atan2(dy, dx)  # the eye line's angle in the frame; the ROI turns it level
    cx, cy = det.center
    scale = ROI_SIZE / side
    cos, sin = math.cos(-angle) * scale, math.sin(-angle) * scale
    half = ROI_SIZE / 2.0
    return np.array([[cos, -sin, half - cos * cx + sin * cy],
                     [sin, cos, half - sin * cx - cos * cy]])


class MeshLandmarker:
    """Runs the face-mesh model on a detection's ROI and gives mesh-derived alignment keypoints."""

    def __init__(self, model: Model) -> None:
        shapes = [s.shape for s in model.inputs], sorted(int(np.prod(s.shape)) for s in model.outputs)
        if shapes != ([(1, ROI_SIZE, ROI_SIZE, 3)], [1, MESH_POINTS * 3]):
            raise ModelError(f"{model.path.name} is not a face-mesh model: expected input 1×192×192×3 and outputs "
                             f"of 1404 and 1 values, got {shapes}")
        self.model = model
        self._mesh_out = next(i for i, s in enumerate(model.outputs) if int(np.prod(s.shape)) == MESH_POINTS * 3)

    def mesh(self, image_bgr: np.ndarray, det: Detection) -> tuple[np.ndarray, float]:
        """The 468 mesh points (x, y in frame pixels) of `det` and the model's face-presence logit."""
        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8 or image_bgr.size == 0:
            raise DataError(f"expected a BGR uint8 H×W×3 image, got {image_bgr.dtype} {image_bgr.shape}")
        m = roi_transform(det)
        roi = cv2.warpAffine(image_bgr, m, (ROI_SIZE, ROI_SIZE), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        x = cv2.cvtColor(roi, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0
        outs = self.model.run(x)
        pts = outs[self._mesh_out].reshape(MESH_POINTS, 3)[:, :2].astype(np.float64)
        logit = float(outs[1 - self._mesh_out].reshape(-1)[0])
        back = cv2.invertAffineTransform(m)
        return pts @ back[:, :2].T + back[:, 2], logit

    def keypoints(self, image_bgr: np.ndarray, det: Detection) -> np.ndarray | None:
        """6×2 keypoints in BlazeFace's order from the mesh, or None when the model sees no face there."""
        pts, logit = self.mesh(image_bgr, det)
        if logit < MIN_PRESENCE_LOGIT:
            return None
        kp = np.empty((6, 2), np.float32)
        kp[RIGHT_EYE] = pts[list(RIGHT_EYE_CONTOUR)].mean(0)
        kp[LEFT_EYE] = pts[list(LEFT_EYE_CONTOUR)].mean(0)
        kp[NOSE] = pts[NOSE_TIP]
        kp[MOUTH] = pts[list(MOUTH_CORNERS)].mean(0)
        kp[RIGHT_EAR] = pts[RIGHT_CHEEK]
        kp[LEFT_EAR] = pts[LEFT_CHEEK]
        return kp

    def refine(self, image_bgr: np.ndarray, det: Detection) -> Detection:
        """`det` with mesh-derived keypoints; unchanged (logged) when the mesh model rejects the face."""
        kp = self.keypoints(image_bgr, det)
        if kp is None:
            log.debug("face mesh sees no face in the ROI of %s; keeping the detector's keypoints", det.box)
            return det
        return dataclasses.replace(det, keypoints=kp)
