"""Accelerator plugins: each loads a model file onto its device; the registry is an explicit dict.

`ACCELERATORS` maps the name `models.accelerator` takes to a factory given the bus (`models.edgetpu_device`);
`load_model` looks the name up there, and "auto" tries `AUTO_ORDER` in turn. A new back-end is one class with
`name` and `load(path, threads)`, and one entry in the dict (no discovery by import side effect).

The Edge TPU runs `*_edgetpu.tflite` files (compiled with edgetpu_compiler) through the
`libedgetpu.so.1` delegate; when the delegate or the compiled file is missing, or it fails, the CPU path
(XNNPACK) runs the plain int8 or float file and the health state says so.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
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


ACCELERATORS: dict[str, Callable[[str], Accelerator]] = {
    "edgetpu": lambda device: EdgeTpuAccelerator(device=device),
    "cpu": lambda device: CpuAccelerator(),
}
"""Back-end name -> factory given the Edge TPU bus ("usb" or "pci"; ignored by the others)."""
AUTO_ORDER = ("edgetpu", "cpu")
"""What "auto" tries, in order: the first that loads runs the model; each failure is logged."""


def load_model(path: Path, *, accelerator: str, device: str = "usb", threads: int = 2) -> Model:
    """Load `path` on the named accelerator; "auto" tries AUTO_ORDER in turn, logging each fallback."""
    names = AUTO_ORDER if accelerator == "auto" else (accelerator,)
    unknown = [n for n in names if n not in ACCELERATORS]
    if unknown:
        raise AcceleratorError(f"unknown accelerator {unknown[0]!r}; known: auto, {', '.join(ACCELERATORS)}")
    for i, name in enumerate(names):
        try:
            return ACCELERATORS[name](device).load(path, threads)
        except AcceleratorError as exc:
            if i == len(names) - 1:
                raise
            log.warning("%s; running %s on the %s instead", exc, path.name, names[i + 1])
    raise AcceleratorError(f"no accelerator loaded {path.name}")  # unreachable: the loop returns or raises
