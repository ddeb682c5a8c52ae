"""`lfr bench match`: 1:N search time per probe and memory against watchlist size, the index vs float32.

Layouts, each searched for the top 3:
- `float32`: the search before issue 17 (and the reference for recall): one float32 matrix-vector product
  (numpy / BLAS sgemv) over all rows, then argpartition;
- `float32_batch`: the same matrix, all faces of a frame (16 here) in one matrix product (sgemm), per probe;
- `int8_simd`: `WatchlistIndex.search`, the appliance's search: int8 scan with NumKong's SIMD kernels, then
  exact float32 re-scoring of the best candidates (exact top-k, see `firmware/match/watchlist_index.py`);
- `int8_simd_batch`: `WatchlistIndex.search_many` over the same 16 probes, per probe.
Watchlists are random unit vectors (192-d); probes are either mated (a watchlist row plus noise, at the cosine
of a genuine LFW pair) or random (nobody on the list). Top-1 recall is agreement with exact float32 search.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numkong
import numpy as np

from firmware.bench.timing import Samples, ratio, timed
from firmware.match.score import ScoreCalibration
from firmware.match.watchlist_index import WatchlistIndex
from firmware.progress import progress

DIM = 192
K = 3
BATCH = 16
# Noise giving a cosine of about 0.6 between a probe and its watchlist row, as for a genuine LFW pair.
MATED_NOISE = 1.3
_CALIBRATION = ScoreCalibration(slope=20.0, cosine_at_threshold=0.4)


def unit_rows(n: int, rng: np.random.Generator, dim: int = DIM) -> np.ndarray:
    """`n` random unit vectors (n×dim float32), generated in blocks to bound the temporary memory."""
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 262_144):
        blk = rng.standard_normal((min(262_144, n - s), dim), dtype=np.float32)
        blk /= np.linalg.norm(blk, axis=1, keepdims=True)
        out[s:s + len(blk)] = blk
    return out


def probes(matrix: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`n` mated probes (noisy copies of random rows) and `n` random non-mated probes, unit length."""
    rows = rng.integers(0, len(matrix), n)
    dim = matrix.shape[1]
    noise = rng.standard_normal((n, dim), dtype=np.float32) * np.float32(MATED_NOISE / np.sqrt(dim))
    mated = matrix[rows] + noise
    mated /= np.linalg.norm(mated, axis=1, keepdims=True)
    return mated.astype(np.float32), unit_rows(n, rng, matrix.shape[1])


def _top(sims: np.ndarray, k: int) -> np.ndarray:
    k = min(k, sims.shape[-1])
    idx = np.argpartition(-sims, k - 1)[:k]
    return idx[np.argsort(-sims[idx])]


class Float32Layout:
    """Exact float32 search with numpy: the matrix-vector product the appliance used before issue 17."""

    name = "float32"

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    @property
    def nbytes(self) -> int:
        return int(self.matrix.nbytes)

    def search(self, probe: np.ndarray) -> np.ndarray:
        return _top(self.matrix @ probe, K)

    def search_batch(self, batch: np.ndarray) -> list[np.ndarray]:
        sims = batch @ self.matrix.T
        idx = np.argpartition(-sims, K - 1, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(sims, idx, axis=1), axis=1)
        return list(np.take_along_axis(idx, order, axis=1))


class IndexLayout:
    """`WatchlistIndex` (int8 SIMD scan + float32 re-scoring), returning row numbers like the others."""

    name = "int8_simd"

    def __init__(self, matrix: np.ndarray) -> None:
        self.index = WatchlistIndex([str(i) for i in range(len(matrix))], matrix, _CALIBRATION)

    @property
    def nbytes(self) -> int:
        """Bytes each search scans (the float32 rows are read only for a few candidates)."""
        return self.index.scan_bytes

    def search(self, probe: np.ndarray) -> np.ndarray:
        return np.array([int(m.subject_id) for m in self.index.search(probe, K)])

    def search_batch(self, batch: np.ndarray) -> list[np.ndarray]:
        return [np.array([int(m.subject_id) for m in found]) for found in self.index.search_many(batch, K)]


def bench_size(n: int, n_probes: int, rng: np.random.Generator) -> dict[str, Any]:
    """All layouts on one watchlist of `n` rows: time per probe, bytes scanned, top-1 recall vs float32.

    The layouts take turns probe by probe (and batch by batch), so a change in the machine's load during
    the run hits them all alike and the ratios stay comparable.
    """
    matrix = unit_rows(n, rng)
    mated, random = probes(matrix, n_probes, rng)
    allp = np.concatenate([mated, random])
    t0 = time.perf_counter()
    index = IndexLayout(matrix)
    build_ms = (time.perf_counter() - t0) * 1e3
    layouts: dict[str, Float32Layout | IndexLayout] = {"float32": Float32Layout(matrix), "int8_simd": index}
    for layout in layouts.values():
        for p in allp[:3]:
            layout.search(p)
    names = ("float32", "float32_batch", "int8_simd", "int8_simd_batch")
    samples = {name: Samples(name) for name in names}
    tops: dict[str, list[int]] = {name: [] for name in names}
    for start in range(0, len(allp), BATCH):
        batch = allp[start:start + BATCH]
        for name, layout in layouts.items():
            found = timed(samples[f"{name}_batch"], layout.search_batch, batch)
            tops[f"{name}_batch"] += [int(f[0]) for f in found]
        for p in batch:
            for name, layout in layouts.items():
                tops[name].append(int(timed(samples[name], layout.search, p)[0]))
    for name in ("float32_batch", "int8_simd_batch"):
        per_probe = [t / BATCH for t in samples[name].seconds]
        samples[name] = Samples("per probe", per_probe)
    truth = np.array(tops["float32"])
    out: dict[str, Any] = {}
    for name, s in samples.items():
        found_top = np.array(tops[name])
        out[name] = {**s.summary(), "mib": layouts[name.removesuffix("_batch")].nbytes / 2**20,
                     "top1_recall": float(np.mean(found_top == truth)),
                     "top1_recall_mated": float(np.mean(found_top[:n_probes] == truth[:n_probes]))}
    for name in ("float32_batch", "int8_simd_batch"):
        out[name]["batch"] = BATCH
    out["int8_simd"]["build_ms"] = build_ms
    for v in out.values():
        v["speed_vs_float32"] = ratio(out["float32"]["p50_ms"], v["p50_ms"])
    return out


def kernels() -> list[str]:
    """The SIMD kernel families NumKong found on this CPU (e.g. `genoa` on Zen 4, `neonsdot` on a Pi 5)."""
    return sorted(name for name, on in numkong.get_capabilities().items() if on)


def run_match(sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000), n_probes: int = 100,
              seed: int = 0) -> dict[str, Any]:
    """`bench_size` for each watchlist size; `n_probes` mated and as many non-mated probes each."""
    rng = np.random.default_rng(seed)
    results = {}
    for n in progress(list(sizes), "watchlist sizes", len(sizes)):
        results[str(n)] = bench_size(n, n_probes, rng)
        gc.collect()
    return {"dim": DIM, "k": K, "probes_per_size": 2 * n_probes, "batch": BATCH,
            "numkong": metadata.version("numkong"), "kernels": kernels(), "sizes": results}


def format_match(r: dict[str, Any]) -> str:
    lines = [f"top-{r['k']} search of {r['probes_per_size']} probes (half mated) per size, {r['dim']}-d; "
             f"NumKong {r['numkong']} kernels: {', '.join(r['kernels'])}",
             f"{'size':>9} {'layout':16} {'p50 ms':>9} {'p99 ms':>9} {'MiB read':>9} {'top-1 recall':>12} "
             f"{'speed':>6}"]
    for n, res in r["sizes"].items():
        for name, v in res.items():
            lines.append(f"{int(n):9d} {name:16} {v['p50_ms']:9.3f} {v['p99_ms']:9.3f} {v['mib']:9.1f} "
                         f"{v['top1_recall']:12.4f} {v['speed_vs_float32']:6.2f}")
    lines.append("speed = float32 p50 / layout p50 (same run); *_batch is per probe in a batch of "
                 f"{r['batch']}; MiB read = bytes each search scans")
    return "\n".join(lines)
