"""Accelerator plugins: each loads a model file onto its device; the registry is an explicit dict.

The Edge TPU runs `*_edgetpu.tflite` files (compiled with edgetpu_compiler) through the
`libedgetpu.so.1` delegate; when the delegate or the compiled file is missing, or it fails, the CPU path
(XNNPACK) runs the plain int8 or float file and the health state says so.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from firmware.accel.runtime import Model, _litert
from firmware.errors import AcceleratorError

log = logging.getLogger(__name__)

EDGETPU_LIBRARY = "libedgetpu.so.1"


class Accelerator(Protocol):
    """Something that can run a model file; `name` appears in the health state."""

    name: str

    def load(self, path: Path, threads: int) -> Model: ...


class CpuAccelerator:
    """The CPU path: LiteRT's built-in kernels with XNNPACK."""

    name = "cpu"

    def load(self, path: Path, threads: int) -> Model:
        return Model(path, threads=threads, backend=self.name)


_DELEGATES: dict[str, Any] = {}


@dataclass
class EdgeTpuAccelerator:
    """A Coral Edge TPU on USB or PCIe; its delegate is created lazily, once per process and device."""

    device: str = "usb"
    name: str = "edgetpu"

    def delegate(self) -> Any:
        if self.device not in _DELEGATES:
            try:
                # Open the library first: when it is missing, LiteRT's Delegate fails half-built and prints an
                # "Exception ignored in Delegate.__del__" traceback at every start of a van without a Coral.
                ctypes.CDLL(EDGETPU_LIBRARY)
                _DELEGATES[self.device] = _litert().load_delegate(EDGETPU_LIBRARY, {"device": self.device})
            except (ValueError, OSError, RuntimeError) as exc:
                raise AcceleratorError(f"Edge TPU delegate {EDGETPU_LIBRARY} (device {self.device}) did not "
                                       f"load: {exc}") from exc
        return _DELEGATES[self.device]

    def load(self, path: Path, threads: int) -> Model:
        compiled = path.with_name(path.stem.replace("_int8", "") + "_edgetpu.tflite")
        if not compiled.is_file():
            raise AcceleratorError(f"no Edge TPU build {compiled.name} beside {path.name}; compile it with "
                                   "edgetpu_compiler on an x86 host")
        return Model(compiled, threads=threads, delegate=self.delegate(), backend=self.name)


ACCELERATORS: dict[str, type] = {"cpu": CpuAccelerator, "edgetpu": EdgeTpuAccelerator}


def load_model(path: Path, *, accelerator: str, device: str = "usb", threads: int = 2) -> Model:
    """Load `path` on the named accelerator; "auto" tries the Edge TPU and falls back to the CPU, logged."""
    if accelerator in ("auto", "edgetpu"):
        try:
            return EdgeTpuAccelerator(device=device).load(path, threads)
        except AcceleratorError as exc:
            if accelerator == "edgetpu":
                raise
            log.warning("%s; running %s on the CPU", exc, path.name)
    return CpuAccelerator().load(path, threads)
