"""MobileFaceNet: a 192-d identity vector per aligned face, from the face and its mirror image.

The model takes a batch of two 112×112 RGB faces normalised as (x − 127.5) / 128. We fill the batch with
the face and its horizontal mirror and sum the two outputs before L2-normalising: one invoke, and the
result is less sensitive to which half of the face the light falls on.
"""

from __future__ import annotations

import numpy as np

from firmware.accel.runtime import Model
from firmware.embed.align import ALIGNED_SIZE
from firmware.errors import DataError, ModelError

EMBEDDING_DIM = 192


class FaceEmbedder:
    """Turns aligned BGR faces into L2-normalised float32 embeddings."""

    def __init__(self, model: Model) -> None:
        if model.inputs[0].shape != (2, ALIGNED_SIZE, ALIGNED_SIZE, 3) or \
                model.outputs[0].shape != (2, EMBEDDING_DIM):
            raise ModelError(f"{model.path.name} is not a MobileFaceNet 2×112×112×3 → 2×192 model "
                             f"(input {model.inputs[0].shape}, output {model.outputs[0].shape})")
        self.model = model
        self._batch = np.empty((2, ALIGNED_SIZE, ALIGNED_SIZE, 3), dtype=np.float32)

    def embed(self, face_bgr: np.ndarray) -> np.ndarray:
        """One aligned 112×112×3 uint8 BGR face → unit-length float32 vector of 192."""
        if face_bgr.shape != (ALIGNED_SIZE, ALIGNED_SIZE, 3):
            raise DataError(f"expected an aligned {ALIGNED_SIZE}×{ALIGNED_SIZE}×3 face, got {face_bgr.shape}")
        rgb = face_bgr[..., ::-1]
        np.subtract(rgb, 127.5, out=self._batch[0])
        self._batch[1] = self._batch[0, :, ::-1]
        self._batch *= np.float32(1.0 / 128.0)
        out = self.model.run(self._batch)[0]
        v = out[0] + out[1]
        n = float(np.linalg.norm(v))
        return (v / n if n > 0 else v).astype(np.float32)

    def embed_many(self, faces_bgr: np.ndarray) -> np.ndarray:
        """N aligned faces → N×192 unit vectors (one invoke per face: the model's batch is its mirror)."""
        return np.stack([self.embed(f) for f in faces_bgr]) if len(faces_bgr) else \
            np.empty((0, EMBEDDING_DIM), np.float32)
