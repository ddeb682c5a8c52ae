"""Invoke time and multiply-accumulates per model file: the numbers a Pi 5 projection scales, measured the same way
on any board.

For every shipped model (detector, face mesh, embedder; int8 and float), count the multiply-accumulates of its
convolution, depthwise and fully connected layers from the tensor shapes, then time `invoke()` alone (no pre- or
post-processing) with LiteRT's CPU path (XNNPACK) at the given thread counts. The models take turns call by call,
so a change in the machine's load hits all of them alike. Prints MMAC, p50/p99 ms and the effective GMAC/s.

    .venv/bin/python scripts/model_invoke_times.py [--threads 1,2,4] [--runs 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from firmware.accel.runtime import Model, quantize
from firmware.config import SHIPPED_MODELS_DIR

ROLES = ("face_detector", "face_landmarks", "face_embedder")


def macs(model: Model) -> int:
    """Multiply-accumulates of one invoke: CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, from tensor shapes."""
    it = model._it  # the interpreter: op and tensor details are not part of Model's own interface
    shapes = {t["index"]: t["shape"] for t in it.get_tensor_details()}
    total = 0
    for op in it._get_ops_details():
        name, weights, out = op["op_name"], op["inputs"], op["outputs"]
        if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        w = shapes[weights[1]]
        per_output = {"CONV_2D": w[1] * w[2] * w[3], "DEPTHWISE_CONV_2D": w[1] * w[2], "FULLY_CONNECTED": w[1]}[name]
        total += int(np.prod(shapes[out[0]])) * int(per_output)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, default=SHIPPED_MODELS_DIR)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    runs: dict[str, tuple[Model, list[np.ndarray], int]] = {}
    for threads in (int(t) for t in args.threads.split(",")):
        for role in ROLES:
            for precision in ("int8", "float"):
                model = Model(args.models / f"{role}_{precision}.tflite", threads=threads)
                inputs = [rng.uniform(-1, 1, spec.shape).astype(np.float32) for spec in model.inputs]
                runs[f"{role} {precision} {threads}t"] = (model, inputs, macs(model))
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(args.runs + 10):
        for name, (model, inputs, _) in runs.items():
            for spec, x in zip(model.inputs, inputs, strict=True):
                model._it.set_tensor(spec.index, quantize(x, spec))
            t0 = time.perf_counter()
            model._it.invoke()
            if i >= 10:  # the first calls pay for caches and XNNPACK's set-up
                times[name].append(time.perf_counter() - t0)
    result = {}
    for name, (_, _, n) in runs.items():
        p50 = float(np.percentile(times[name], 50)) * 1e3
        result[name] = {"mmac": n / 1e6, "p50_ms": p50, "p99_ms": float(np.percentile(times[name], 99)) * 1e3,
                        "gmac_per_s": n / 1e6 / p50}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, r in result.items():
        print(f"{name:28} {r['mmac']:7.1f} MMAC  p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  "
              f"{r['gmac_per_s']:6.1f} GMAC/s")


if __name__ == "__main__":
    main()
