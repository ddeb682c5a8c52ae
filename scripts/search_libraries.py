"""Compare SIMD search libraries for the watchlist scan on one synthetic list, side by side in one process.

Why this exists: issue 17 chose NumKong for `WatchlistIndex` by measurement, licence and aarch64 wheels. This
re-runs that measurement: every candidate scans the same N×192 unit rows for the same probes, taking turns probe
by probe (a 64 MiB buffer is read between turns, so every scan starts from memory, as on a busy appliance), and
reports p50/p99 per probe and top-1 agreement with exact float32. usearch and faiss-cpu are not dependencies
of the appliance; candidates whose library is not installed are skipped (`pip install usearch faiss-cpu`).

    .venv/bin/python scripts/search_libraries.py --size 100000 --probes 100 [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np

from firmware.bench.match import probes, unit_rows
from firmware.match.score import ScoreCalibration
from firmware.match.watchlist_index import WatchlistIndex

Search = Callable[[np.ndarray], int]


def candidates(matrix: np.ndarray) -> dict[str, Search]:
    """Name -> search returning the top-1 row, for every library that is installed."""
    out: dict[str, Search] = {"numpy_float32": lambda p: int(np.argmax(matrix @ p))}
    index = WatchlistIndex([str(i) for i in range(len(matrix))], matrix, ScoreCalibration(20.0, 0.4))
    out["numkong_int8_rescore"] = lambda p: int(index.search(p, 1)[0].subject_id)
    scale = 127.0 / float(np.abs(matrix).max())
    rows8 = np.rint(matrix * scale).astype(np.int8)
    try:
        import usearch.index as ui
    except ImportError:
        pass
    else:
        out["usearch_exact_int8"] = lambda p: int(ui.search(rows8, np.rint(p * scale).astype(np.int8), 1, "ip",
                                                            exact=True).keys[0])
    try:
        import faiss
    except ImportError:
        pass
    else:
        faiss.omp_set_num_threads(1)
        flat = faiss.IndexFlatIP(matrix.shape[1])
        flat.add(matrix)
        sq8 = faiss.IndexScalarQuantizer(matrix.shape[1], faiss.ScalarQuantizer.QT_8bit,
                                         faiss.METRIC_INNER_PRODUCT)
        sq8.train(matrix)
        sq8.add(matrix)
        out["faiss_flat_float32"] = lambda p: int(flat.search(p[None, :], 1)[1][0, 0])
        out["faiss_sq8_approx"] = lambda p: int(sq8.search(p[None, :], 1)[1][0, 0])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--probes", type=int, default=100, help="mated probes, and as many non-mated")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    matrix = unit_rows(args.size, rng)
    mated, random = probes(matrix, args.probes, rng)
    flush = np.ones(64 * 2**20 // 8, np.int64)
    libs = candidates(matrix)
    times: dict[str, list[float]] = {name: [] for name in libs}
    tops: dict[str, list[int]] = {name: [] for name in libs}
    for p in np.concatenate([mated, random]):
        for name, search in libs.items():
            flush.sum()
            t0 = time.perf_counter()
            tops[name].append(search(p))
            times[name].append(time.perf_counter() - t0)
    truth = np.array(tops["numpy_float32"])
    result = {name: {"p50_ms": float(np.percentile(t, 50) * 1e3), "p99_ms": float(np.percentile(t, 99) * 1e3),
                     "top1_recall": float(np.mean(np.array(tops[name]) == truth))} for name, t in times.items()}
    if args.json:
        print(json.dumps({"size": args.size, "results": result}, indent=2))
        return
    for name, r in result.items():
        print(f"{name:22} p50 {r['p50_ms']:7.3f} ms  p99 {r['p99_ms']:7.3f} ms  top-1 recall {r['top1_recall']:.4f}")


if __name__ == "__main__":
    main()
