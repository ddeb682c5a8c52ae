"""Edge-TPU-ready int8 files: the embedder at batch 1 with the batch-2 file's embeddings, and the static check of
`lfr models verify --edgetpu` (passes the shipped files, names the op where a bad file would split)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from firmware.accel.edgetpu_check import check_edgetpu
from firmware.accel.graph import Graph, set_batch
from firmware.accel.modelfiles import read_manifest, sha256_file
from firmware.accel.runtime import Model
from firmware.config import REPO_MODELS_DIR, AppConfig, ModelsConfig
from firmware.embed.embedder import FaceEmbedder
from firmware.embed.recognizer import Recognizer

INT8_FILES = ("face_detector_int8.tflite", "face_embedder_int8.tflite", "face_landmarks_int8.tflite")


def lfr(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "firmware.cli.main", *argv], capture_output=True, text=True,
                          timeout=120)


def models_with(tmp_path: Path, name: str, data: bytes) -> Path:
    """A copy of models/ in which `name` is replaced by `data`, its manifest sha256 updated to match."""
    d = tmp_path / "models"
    shutil.copytree(REPO_MODELS_DIR, d)
    old = sha256_file(d / name)
    (d / name).write_bytes(data)
    manifest = d / "manifest.toml"
    manifest.write_text(manifest.read_text().replace(old, sha256_file(d / name)))
    return d


def config_for(tmp_path: Path, models: Path) -> Path:
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(f'[models]\ndir = "{models}"\n')
    return cfg


def with_abs_op(data: bytes, position: int) -> bytes:
    """The model with its op at `position` replaced by ABS of that op's first input (ABS has no Edge TPU
    kernel; int8 ABS is a LiteRT builtin, so the file still loads)."""
    from ai_edge_litert import schema_py_generated as s

    graph = Graph.from_bytes(data)
    model = graph.model
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.ABS
    code.version = 2
    model.operatorCodes.append(code)
    op = model.subgraphs[0].operators[position]
    op.opcodeIndex = len(model.operatorCodes) - 1
    op.inputs = [op.inputs[0]]
    op.builtinOptions, op.builtinOptionsType = None, 0
    return graph.to_bytes()


@pytest.fixture(scope="module")
def lfw_faces(lfw_dir: Path) -> list[np.ndarray]:
    """Aligned faces of 30 LFW people (one image each), cut by the shipped int8 detector and mesh."""
    rec = Recognizer.from_config(AppConfig(models=ModelsConfig(accelerator="cpu", threads=1)), precision="int8")
    faces = []
    for path in sorted((lfw_dir / "images").glob("*/*_0001.jpg"))[::50][:30]:
        img = cv2.imread(str(path))
        dets = rec.main_face(img)
        if dets:
            faces.append(rec.face(img, dets[0]).aligned)
    assert len(faces) >= 28
    return faces


def test_the_shipped_embedder_takes_one_face_per_invoke() -> None:
    manifest = read_manifest(REPO_MODELS_DIR)
    for precision in ("int8", "float"):
        m = Model(REPO_MODELS_DIR / f"face_embedder_{precision}.tflite", threads=1)
        assert m.inputs[0].shape == (1, 112, 112, 3) and m.outputs[0].shape == (1, 192)
        tensors = manifest[f"face_embedder_{precision}"]["tensors"]
        assert [t["shape"] for t in tensors] == [[1, 112, 112, 3], [1, 192]]


@pytest.mark.parametrize("precision", ["int8", "float"])
@pytest.mark.parametrize("threads", [1, 2])
def test_batch_one_gives_the_batch_two_embeddings(lfw_faces: list[np.ndarray], tmp_path: Path, precision: str,
                                                  threads: int) -> None:
    """Only shapes were rewritten: per face, cosine >= 0.9999 with the batch-2 form of the same file (the
    calibration in models/calibration.toml was fitted on the batch-2 int8 embedder). Measured: bit-identical."""
    shipped = REPO_MODELS_DIR / f"face_embedder_{precision}.tflite"
    batch2 = tmp_path / "batch2.tflite"
    batch2.write_bytes(set_batch(shipped.read_bytes(), 2))
    one, two = FaceEmbedder(Model(shipped, threads=threads)), FaceEmbedder(Model(batch2, threads=threads))
    assert (one.batch, two.batch) == (1, 2)
    cosines = np.array([float(one.embed(f) @ two.embed(f)) for f in lfw_faces])
    assert cosines.min() >= 0.9999, cosines.min()


def test_set_batch_round_trips_to_the_same_bytes() -> None:
    shipped = (REPO_MODELS_DIR / "face_embedder_int8.tflite").read_bytes()
    assert set_batch(set_batch(shipped, 2), 1) == shipped


def test_the_shipped_int8_files_pass_the_edge_tpu_check(tmp_path: Path) -> None:
    for name in INT8_FILES:
        report = check_edgetpu(REPO_MODELS_DIR / name)
        assert report.ok, report.summary()
        assert report.mapped == report.ops > 90
    result = lfr("models", "verify", "--edgetpu", "--json", "--config", str(config_for(tmp_path, REPO_MODELS_DIR)))
    out = json.loads(result.stdout)
    assert result.returncode == 0 and out["ok"], result.stdout + result.stderr
    assert sorted(r["file"] for r in out["edgetpu"]) == sorted(INT8_FILES)


def test_a_batch_two_embedder_fails_at_its_first_op(tmp_path: Path) -> None:
    data = set_batch((REPO_MODELS_DIR / "face_embedder_int8.tflite").read_bytes(), 2)
    models = models_with(tmp_path, "face_embedder_int8.tflite", data)
    report = check_edgetpu(models / "face_embedder_int8.tflite")
    assert not report.ok and report.first_cpu_op is not None
    assert (report.first_cpu_op.index, report.first_cpu_op.op) == (0, "CONV_2D")
    assert "[2, 112, 112, 3]" in report.first_cpu_op.reason
    result = lfr("models", "verify", "--edgetpu", "--config", str(config_for(tmp_path, models)))
    assert result.returncode == 1
    bad = [line for line in result.stdout.splitlines() if line.startswith("BAD")]
    assert len(bad) == 1 and "face_embedder_int8.tflite" in bad[0] and "op 0 CONV_2D" in bad[0], result.stdout


def test_an_unsupported_op_is_named_with_what_would_run_on_the_cpu(tmp_path: Path) -> None:
    shipped = (REPO_MODELS_DIR / "face_embedder_int8.tflite").read_bytes()
    graph = Graph.from_bytes(shipped)
    position = next(i for i, op in enumerate(graph.model.subgraphs[0].operators)
                    if i > 10 and graph.op_name(op) == "PRELU")
    data = with_abs_op(shipped, position)
    models = models_with(tmp_path, "face_embedder_int8.tflite", data)
    Model(models / "face_embedder_int8.tflite", threads=1)  # still a valid model for LiteRT
    report = check_edgetpu(models / "face_embedder_int8.tflite")
    assert report.first_cpu_op is not None and report.first_cpu_op.op == "ABS"
    assert report.first_cpu_op.index == position == report.mapped
    assert "not in the Edge TPU's supported operations" in report.first_cpu_op.reason
    result = lfr("models", "verify", "--edgetpu", "--json", "--config", str(config_for(tmp_path, models)))
    out = json.loads(result.stdout)
    assert result.returncode == 1 and not out["ok"]
    [emb] = [r for r in out["edgetpu"] if r["file"] == "face_embedder_int8.tflite"]
    assert emb["first_cpu_op"]["op"] == "ABS" and f"op {position} ABS" in emb["summary"]


def test_a_float_file_fails_on_its_float_input() -> None:
    report = check_edgetpu(REPO_MODELS_DIR / "face_embedder_float.tflite")
    assert report.first_cpu_op is not None and "float32, not 8-bit quantised" in report.first_cpu_op.reason
