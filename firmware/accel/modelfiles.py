"""The model files in `models/`: their manifest, integrity checks, and choosing the variant to run.

Each role (face_detector, face_embedder, face_landmarks) has an int8 file, a float reference and optionally an
Edge TPU build. On the Edge TPU the int8 graph runs compiled; on the CPU, `precision = "auto"` times both plain files
on this machine at start-up and runs the faster (their agreement is in the manifest: int8 is used only
because it matches float closely), and the health state says which ran.
"""

from __future__ import annotations

import hashlib
import logging
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware.accel.backends import EdgeTpuAccelerator, load_model
from firmware.accel.runtime import Model
from firmware.errors import AcceleratorError, ModelError

log = logging.getLogger(__name__)

ROLES = ("face_detector", "face_embedder", "face_landmarks")
# Tensor types allowed inside an int8 model: int8 activations and weights, int32 biases.
INT8_INNER_TYPES = (np.dtype(np.int8), np.dtype(np.int32))


def read_manifest(models_dir: Path) -> dict[str, dict[str, Any]]:
    """The `[models.*]` tables of models/manifest.toml, keyed by "<role>_<precision>"."""
    path = models_dir / "manifest.toml"
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ModelError(f"no model manifest at {path}; the models folder is incomplete") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"model manifest {path} is not valid TOML: {exc}") from exc
    models = data.get("models")
    if not isinstance(models, dict) or not models:
        raise ModelError(f"model manifest {path} lists no [models.*] tables")
    return models


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class FileCheck:
    """Result of checking one model file against the manifest."""

    name: str
    file: str
    sha256_ok: bool
    all_int8: bool | None
    float_tensors: tuple[str, ...]
    problem: str = ""


def verify_models(models_dir: Path) -> list[FileCheck]:
    """Check every file of the manifest: present, sha256 equal, and int8 files fully integer inside."""
    checks = []
    for name, entry in read_manifest(models_dir).items():
        path = models_dir / str(entry.get("file", ""))
        if not path.is_file():
            checks.append(FileCheck(name, path.name, False, None, (), f"{path} is missing"))
            continue
        digest = sha256_file(path)
        ok = digest == entry.get("sha256")
        problem = "" if ok else f"sha256 {digest[:16]}… differs from the manifest's {str(entry.get('sha256'))[:16]}…"
        all_int8: bool | None = None
        floats: tuple[str, ...] = ()
        if entry.get("precision") == "int8":
            try:
                model = Model(path, threads=1)
            except ModelError as exc:
                checks.append(FileCheck(name, path.name, ok, False, (), str(exc)))
                continue
            floats = tuple(n for n, dt in model.tensor_dtypes() if dt not in INT8_INNER_TYPES)
            all_int8 = not floats
            if floats and not problem:
                problem = f"{len(floats)} tensors are not int8/int32, e.g. {floats[0]}"
        checks.append(FileCheck(name, path.name, ok, all_int8, floats, problem))
    return checks


def model_file(models_dir: Path, role: str, precision: str) -> Path:
    """Path of `<role>_<precision>.tflite`, checked against the manifest so a swapped file is refused."""
    entry = read_manifest(models_dir).get(f"{role}_{precision}")
    if entry is None:
        raise ModelError(f"the manifest in {models_dir} has no {role}_{precision} model")
    path = models_dir / str(entry["file"])
    if not path.is_file():
        raise ModelError(f"model file {path} is missing; rebuild with scripts/build_models.py")
    if sha256_file(path) != entry["sha256"]:
        raise ModelError(f"model file {path} does not match its sha256 in the manifest; refusing to run it")
    return path


def _time_model(model: Model, runs: int = 5) -> float:
    inputs = [np.zeros(s.shape, np.float32) for s in model.inputs]
    model.run(*inputs)
    t0 = time.perf_counter()
    for _ in range(runs):
        model.run(*inputs)
    return (time.perf_counter() - t0) / runs


@dataclass
class LoadedModel:
    """A model ready to run and how it was chosen, for the health state."""

    model: Model
    precision: str
    backend: str
    note: str


def load_role(models_dir: Path, role: str, *, accelerator: str = "auto", device: str = "usb",
              precision: str = "auto", threads: int = 2) -> LoadedModel:
    """Load one role's model on the configured accelerator and precision (see the module docstring)."""
    fallback = ""
    if accelerator != "cpu":
        try:
            if f"{role}_edgetpu" in read_manifest(models_dir):
                model_file(models_dir, role, "edgetpu")  # a compiled file that does not match is refused
            model = EdgeTpuAccelerator(device=device).load(model_file(models_dir, role, "int8"), threads)
            return LoadedModel(model, "int8", "edgetpu", f"Edge TPU ({device})")
        except (AcceleratorError, ModelError) as exc:
            if accelerator == "edgetpu":
                raise
            log.warning("%s: %s; falling back to the CPU", role, exc)
            fallback = "Edge TPU unavailable, "
    if precision in ("int8", "float"):
        model = load_model(model_file(models_dir, role, precision), accelerator="cpu", threads=threads)
        return LoadedModel(model, precision, "cpu", f"{fallback}CPU {precision} (configured)")
    candidates = {p: load_model(model_file(models_dir, role, p), accelerator="cpu",
                                threads=threads) for p in ("int8", "float")}
    timings = {p: _time_model(m) for p, m in candidates.items()}
    best = min(timings, key=lambda p: timings[p])
    note = (f"{fallback}CPU {best}, measured faster at start-up ({timings['int8'] * 1e3:.1f} ms int8 vs "
            f"{timings['float'] * 1e3:.1f} ms float)")
    log.info("%s: %s", role, note)
    return LoadedModel(candidates[best], best, "cpu", note)
