"""The model files in `models/`: their manifest, integrity checks, and choosing the variant to run.

Each role (face_detector, face_embedder, face_landmarks) has an int8 file, a float reference and optionally an
Edge TPU build. On the Edge TPU the int8 graph runs compiled; on the CPU, `precision = "auto"` runs the embedder
file the score calibration was fitted on, and for the other roles the faster of the two files on this machine,
measured once and stored (`PrecisionChoices`), so every start and every process makes the same choice; the
health state says which ran and why.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import time
import tomllib
from collections.abc import Callable
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


def calibrated_precision(models_dir: Path) -> str | None:
    """The embedder precision models/calibration.toml was fitted on ("… (int8)" in its `fitted_on`), or None."""
    try:
        with (models_dir / "calibration.toml").open("rb") as fh:
            fitted_on = str(tomllib.load(fh).get("fitted_on", ""))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    found = re.search(r"\((int8|float)\)\s*$", fitted_on)
    return found.group(1) if found else None


class PrecisionChoices:
    """The CPU precision chosen per role on this machine, measured once and kept in a JSON file.

    `models.precision = "auto"` used to time both files at every start, so the embedder could be float at one
    start and int8 at the next (and a watchlist enrolled by one be searched with the other). Now the first start
    measures, under a file lock so that camera processes starting together agree, and stores the choice with the
    sha256 of both files and the thread count it was measured with; later starts read it. It is measured again
    only when a file or the thread count changes, or when the file is deleted.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("precision choices %s unreadable (%s); measuring again", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def choose(self, role: str, files: dict[str, Path], threads: int,
               measure: Callable[[], dict[str, float]]) -> tuple[str, str]:
        """(precision, note) for `role`: the stored choice when it was made on these files, else measured now."""
        key = {p: sha256_file(f) for p, f in files.items()}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = self.path.with_name(self.path.name + ".lock").open("a")
        except OSError as exc:
            timings = measure()
            best = min(timings, key=lambda p: timings[p])
            return best, f"measured at this start, not stored ({self.path}: {exc})"
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            entry = data.get(role)
            if isinstance(entry, dict) and entry.get("files") == key and entry.get("threads") == threads \
                    and entry.get("precision") in key:
                return str(entry["precision"]), (f"chosen on this machine {entry.get('measured', '?')} "
                                                 f"({entry.get('timings_ms', {})} ms), kept in {self.path}")
            timings = measure()
            best = min(timings, key=lambda p: timings[p])
            data[role] = {"precision": best, "files": key, "threads": threads,
                          "timings_ms": {p: round(t * 1e3, 2) for p, t in timings.items()},
                          "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, self.path)
            return best, (f"measured faster on this machine ({timings['int8'] * 1e3:.1f} ms int8 vs "
                          f"{timings['float'] * 1e3:.1f} ms float), kept in {self.path}")


def load_role(models_dir: Path, role: str, *, accelerator: str = "auto", device: str = "usb",
              precision: str = "auto", threads: int = 2, choices: PrecisionChoices | None = None) -> LoadedModel:
    """Load one role's model on the configured accelerator and precision (see the module docstring).

    With precision "auto" on the CPU, the embedder runs the file the score calibration was fitted on (its
    scores mean what the calibration says only for those embeddings), and the other roles the precision stored
    in `choices` (measured once per machine); without `choices` (no state directory) the int8 file.
    """
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
    calibrated = calibrated_precision(models_dir) if role == "face_embedder" else None
    if precision in ("int8", "float"):
        model = load_model(model_file(models_dir, role, precision), accelerator="cpu", threads=threads)
        note = f"{fallback}CPU {precision} (configured)"
        if calibrated not in (None, precision):
            note += f"; the score calibration was fitted on {calibrated} embeddings: scores are off until " \
                    f"`lfr eval calibrate --precision {precision}`"
            log.warning("%s: %s", role, note)
        return LoadedModel(model, precision, "cpu", note)
    if calibrated is not None:
        model = load_model(model_file(models_dir, role, calibrated), accelerator="cpu", threads=threads)
        return LoadedModel(model, calibrated, "cpu",
                           f"{fallback}CPU {calibrated}: the file the score calibration was fitted on")
    files = {p: model_file(models_dir, role, p) for p in ("int8", "float")}
    candidates: dict[str, Model] = {}

    def measure() -> dict[str, float]:
        for p, f in files.items():
            candidates.setdefault(p, load_model(f, accelerator="cpu", threads=threads))
        return {p: _time_model(m) for p, m in candidates.items()}

    if choices is None:
        # Timing at every start let the choice flip with the machine's load (a detector score moved from 0.935
        # to 0.962 between two runs on the same frame): with nowhere to keep a measurement, run the int8 files
        # the appliance is built around.
        best, how = "int8", "no state directory to keep a measured choice in, so the int8 file"
    else:
        best, how = choices.choose(role, files, threads, measure)
    model = candidates.get(best) or load_model(files[best], accelerator="cpu", threads=threads)
    note = f"{fallback}CPU {best}, {how}"
    log.info("%s: %s", role, note)
    return LoadedModel(model, best, "cpu", note)
