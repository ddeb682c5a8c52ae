"""`lfr bench match`: 1:N search time per probe and memory against watchlist size, for several layouts.

Layouts, each searched for the top 3:
- `float32`: the `WatchlistIndex` layout, one matrix-vector product (BLAS sgemv) and argpartition;
- `float32_batch`: the same matrix, all faces of a frame (16 here) searched in one matrix product (sgemm),
  time per probe;
- `float16`: half the memory; rows upcast to float32 in chunks of `CHUNK` rows, then sgemv per chunk;
- `int8_rescore`: a quarter of the memory (one scale for the whole matrix: rows are unit vectors), scored
  chunk by chunk the same way, then the top `RESCORE` candidates rescored exactly against float32 rows.
Watchlists are random unit vectors (192-d); probes are either mated (a watchlist row plus noise, at the cosine
of a genuine LFW pair) or random (nobody on the list). Top-1 recall is agreement with exact float32 search.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

import numpy as np

from firmware.bench.timing import Samples, ratio, timed
from firmware.progress import progress

DIM = 192
K = 3
CHUNK = 16_384
RESCORE = 32
BATCH = 16
# Noise giving a cosine of about 0.6 between a probe and its watchlist row, as for a genuine LFW pair.
MATED_NOISE = 1.3


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
    """Exact search, the `WatchlistIndex` layout."""

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


class ChunkedLayout:
    """float16 or int8 storage scored chunk by chunk in float32; int8 then rescored exactly."""

    def __init__(self, matrix: np.ndarray, dtype: str) -> None:
        self.name = "float16" if dtype == "float16" else "int8_rescore"
        if dtype == "float16":
            self.scale = 1.0
            self.store = matrix.astype(np.float16)
            self.exact: np.ndarray | None = None
        else:
            self.scale = float(np.abs(matrix).max()) / 127.0
            self.store = np.empty(matrix.shape, np.int8)
            for s in range(0, len(matrix), CHUNK):
                self.store[s:s + CHUNK] = np.rint(matrix[s:s + CHUNK] / self.scale)
            # The float32 rows are read only for RESCORE candidates: on a device they can stay on disk (mmap).
            self.exact = matrix
        self._buf = np.empty((CHUNK, DIM), np.float32)

    @property
    def nbytes(self) -> int:
        """Bytes that must stay resident: the compact matrix (the exact rows can live on disk)."""
        return int(self.store.nbytes)

    def search(self, probe: np.ndarray) -> np.ndarray:
        keep = RESCORE if self.exact is not None else K
        cand_idx, cand_sim = [], []
        for s in range(0, len(self.store), CHUNK):
            blk = self.store[s:s + CHUNK]
            buf = self._buf[:len(blk)]
            buf[...] = blk
            sims = buf @ probe
            top = _top(sims, keep)
            cand_idx.append(top + s)
            cand_sim.append(sims[top])
        idx, sim = np.concatenate(cand_idx), np.concatenate(cand_sim)
        if self.exact is not None:
            idx = idx[_top(sim, RESCORE)]
            return idx[_top(self.exact[idx] @ probe, K)]
        return idx[_top(sim, K)]


def bench_size(n: int, n_probes: int, rng: np.random.Generator) -> dict[str, Any]:
    """All layouts on one watchlist of `n` rows: time per probe, resident bytes, top-1 recall vs float32.

    The layouts take turns probe by probe (and batch by batch), so a change in the machine's load during
    the run hits them all alike and the ratios stay comparable.
    """
    matrix = unit_rows(n, rng)
    mated, random = probes(matrix, n_probes, rng)
    allp = np.concatenate([mated, random])
    layouts: dict[str, Any] = {"float32": Float32Layout(matrix), "float16": ChunkedLayout(matrix, "float16"),
                               "int8_rescore": ChunkedLayout(matrix, "int8")}
    for layout in layouts.values():
        for p in allp[:3]:
            layout.search(p)
    samples = {name: Samples(name) for name in (*layouts, "float32_batch")}
    tops: dict[str, list[int]] = {name: [] for name in samples}
    for start in range(0, len(allp), BATCH):
        batch = allp[start:start + BATCH]
        found = timed(samples["float32_batch"], layouts["float32"].search_batch, batch)
        tops["float32_batch"] += [int(f[0]) for f in found]
        for p in batch:
            for name, layout in layouts.items():
                tops[name].append(int(timed(samples[name], layout.search, p)[0]))
    samples["float32_batch"] = Samples("per probe", [t / BATCH for t in samples["float32_batch"].seconds])
    truth = np.array(tops["float32"])
    out: dict[str, Any] = {}
    for name, s in samples.items():
        found_top = np.array(tops[name])
        nbytes = layouts[name].nbytes if name in layouts else layouts["float32"].nbytes
        out[name] = {**s.summary(), "mib": nbytes / 2**20, "top1_recall": float(np.mean(found_top == truth)),
                     "top1_recall_mated": float(np.mean(found_top[:n_probes] == truth[:n_probes]))}
    out["float32_batch"]["batch"] = BATCH
    for v in out.values():
        v["speed_vs_float32"] = ratio(out["float32"]["p50_ms"], v["p50_ms"])
    return out


def run_match(sizes: Sequence[int] = (1_000, 10_000, 100_000, 1_000_000), n_probes: int = 100,
              seed: int = 0) -> dict[str, Any]:
    """`bench_size` for each watchlist size; `n_probes` mated and as many non-mated probes each."""
    rng = np.random.default_rng(seed)
    results = {}
    for n in progress(list(sizes), "watchlist sizes", len(sizes)):
        results[str(n)] = bench_size(n, n_probes, rng)
        gc.collect()
    return {"dim": DIM, "k": K, "probes_per_size": 2 * n_probes, "chunk_rows": CHUNK, "rescore": RESCORE,
            "sizes": results}


def format_match(r: dict[str, Any]) -> str:
    lines = [f"top-{r['k']} search of {r['probes_per_size']} probes (half mated) per size, {r['dim']}-d",
             f"{'size':>9} {'layout':14} {'p50 ms':>9} {'p99 ms':>9} {'MiB':>8} {'top-1 recall':>12} "
             f"{'speed':>6}"]
    for n, res in r["sizes"].items():
        for name, v in res.items():
            if isinstance(v, dict):
                lines.append(f"{int(n):9d} {name:14} {v['p50_ms']:9.3f} {v['p99_ms']:9.3f} {v['mib']:8.1f} "
                             f"{v['top1_recall']:12.4f} {v['speed_vs_float32']:6.2f}")
    lines.append("speed = float32 p50 / layout p50 (same run); float32_batch is per probe in a batch of "
                 f"{BATCH}")
    return "\n".join(lines)
