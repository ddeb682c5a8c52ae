"""Load a LiteRT model once and run it with quantise/dequantise at the boundary.

The interpreter comes from `ai-edge-litert` (the successor of tflite-runtime), with `tflite_runtime` as an
import fallback for older Raspberry Pi OS images. Callers hand in float inputs and get float outputs; for an
int8 model this module quantises with the input tensor's own scale and zero point, so the pipeline code is
the same for the int8, float and Edge TPU variants.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware.errors import AcceleratorError, ModelError

log = logging.getLogger(__name__)


def _litert() -> Any:
    """The interpreter module: ai_edge_litert, else tflite_runtime; imported lazily, once."""
    try:
        from ai_edge_litert import interpreter as mod
    except ImportError:
        try:
            from tflite_runtime import interpreter as mod
        except ImportError as exc:
            raise ModelError("no LiteRT runtime: install ai-edge-litert (or tflite-runtime)") from exc
    return mod


@dataclass(frozen=True)
class TensorSpec:
    """Shape, dtype and (scale, zero point) of one model input or output; scale 0 means float."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def is_quantized(self) -> bool:
        return self.scale != 0.0 and self.dtype in (np.int8, np.uint8)


class Model:
    """One loaded model: `run(*inputs)` takes float arrays and returns float arrays."""

    def __init__(self, path: Path, *, threads: int = 2, delegate: Any | None = None,
                 backend: str = "cpu") -> None:
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist; run `lfr models verify` or rebuild with "
                             "scripts/build_models.py")
        mod = _litert()
        try:
            delegates = [delegate] if delegate is not None else None
            self._it = mod.Interpreter(model_path=str(path), num_threads=threads,
                                       experimental_delegates=delegates)
            self._it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            if delegate is not None:
                raise AcceleratorError(f"{backend} could not run {path.name}: {exc}") from exc
            raise ModelError(f"{path} is not a valid LiteRT model: {exc}") from exc
        self.path = path
        self.backend = backend
        self.inputs = [self._spec(d) for d in self._it.get_input_details()]
        self.outputs = [self._spec(d) for d in self._it.get_output_details()]

    @staticmethod
    def _spec(d: dict[str, Any]) -> TensorSpec:
        scale, zp = d["quantization"]
        return TensorSpec(d["name"], int(d["index"]), tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]),
                          float(scale), int(zp))

    @property
    def is_quantized(self) -> bool:
        return self.inputs[0].is_quantized

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run once; inputs are float32 in the model's float domain, outputs float32 (copies)."""
        for spec, x in zip(self.inputs, inputs, strict=True):
            if x.shape != spec.shape:
                raise ModelError(f"{self.path.name}: input {spec.name} expects shape {spec.shape}, got {x.shape}")
            self._it.set_tensor(spec.index, quantize(x, spec))
        self._it.invoke()
        return [dequantize(self._it.get_tensor(spec.index), spec) for spec in self.outputs]

    def tensor_dtypes(self) -> list[tuple[str, np.dtype]]:
        """Every tensor's name and dtype, for `lfr models verify` (all int8 apart from the boundary)."""
        return [(d["name"], np.dtype(d["dtype"])) for d in self._it.get_tensor_details()]


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float → the tensor's integer type with its scale and zero point (saturating)."""
    if not spec.is_quantized:
        return x.astype(spec.dtype, copy=False)
    info = np.iinfo(spec.dtype)
    q = np.rint(x / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def dequantize(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The tensor's integers → float32; float tensors are copied so the interpreter can reuse its buffer."""
    if not spec.is_quantized:
        return np.array(q, dtype=np.float32)
    return (q.astype(np.float32) - spec.zero_point) * np.float32(spec.scale)
