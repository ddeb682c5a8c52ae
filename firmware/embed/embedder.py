"""MobileFaceNet: a 192-d identity vector per aligned face, from the face and its mirror image.

The model takes 112×112 RGB faces normalised as (x − 127.5) / 128. We embed the face and its horizontal mirror
and sum the two outputs before L2-normalising: the result is less sensitive to which half of the face the light
falls on. The shipped files take a batch of 1 (face and mirror are two invokes), the shape the Edge TPU maps;
a batch-2 file (both in one invoke, as the model was published) gives the same vector and is still accepted.
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
        shape_in, shape_out = model.inputs[0].shape, model.outputs[0].shape
        self.batch = shape_in[0] if shape_in else 0
        if self.batch not in (1, 2) or shape_in[1:] != (ALIGNED_SIZE, ALIGNED_SIZE, 3) or \
                shape_out != (self.batch, EMBEDDING_DIM):
            raise ModelError(f"{model.path.name} is not a MobileFaceNet N×112×112×3 → N×192 model with N 1 or 2 "
                             f"(input {shape_in}, output {shape_out})")
        self.model = model
        self._pair = np.empty((2, ALIGNED_SIZE, ALIGNED_SIZE, 3), dtype=np.float32)

    def embed(self, face_bgr: np.ndarray) -> np.ndarray:
        """One aligned 112×112×3 uint8 BGR face → unit-length float32 vector of 192."""
        if face_bgr.shape != (ALIGNED_SIZE, ALIGNED_SIZE, 3):
            raise DataError(f"expected an aligned {ALIGNED_SIZE}×{ALIGNED_SIZE}×3 face, got {face_bgr.shape}")
        rgb = face_bgr[..., ::-1]
        np.subtract(rgb, 127.5, out=self._pair[0])
        self._pair[1] = self._pair[0, :, ::-1]
        self._pair *= np.float32(1.0 / 128.0)
        if self.batch == 2:
            out = self.model.run(self._pair)[0]
            v = out[0] + out[1]
        else:
            v = self.model.run(self._pair[0:1])[0][0] + self.model.run(self._pair[1:2])[0][0]
        n = float(np.linalg.norm(v))
        return (v / n if n > 0 else v).astype(np.float32)
