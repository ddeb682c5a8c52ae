"""The active watchlist, searched exactly: an int8 SIMD scan of every row, then float32 re-scoring of the best.

Rows are L2-normalised embeddings, so cosine similarity is a dot product. A search has two steps:
1. **Scan** (int8): the rows, quantised once with one scale `s` (a quarter of float32's bytes), are dotted with
   the quantised probe by NumKong's packed int8 kernels (AVX-512 VNNI / AVX2 on x86, NEON SDOT or SVE on Arm;
   the library picks the best the CPU has at run time). 100k × 192 is 18 MiB instead of 73 MiB, so the scan
   reads a quarter of the memory and uses integer dot-product instructions that numpy does not have.
2. **Re-score** (float32): the rows whose int8 dot is close enough to the k-th best int8 dot to be in the top k
   are scored exactly against the float32 rows (a few dozen at most on real and random lists).

Why the answer is the exact float32 top-k, not an approximation: write the quantised row as `m + dm` and the
quantised probe as `q + dq` (both divided by `s`). Then `|int8 score - true score| <= eps = |dm| + |dq| +
|dm||dq|` (Cauchy-Schwarz; `|q| = |m| = 1`); `|dm|` is measured for every row when the index is built and `|dq|`
for every probe. Let `d_k` be the k-th best int8 score. The k rows holding the k best int8 scores all have a true
score of at least `d_k - eps`, so the k-th best true score is at least that too, and every row of the true top
k has an int8 score of at least `d_k - 2 eps`. Re-scoring every row above that line in float32 and keeping the
best k gives exactly the float32 top k. A list of near-duplicates only makes the re-scored set larger, never the
answer wrong.

An index is immutable: a new watchlist builds a new index and the pipeline swaps the reference between
frames, so no frame is matched against a half-loaded list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numkong
import numpy as np

from firmware.errors import DataError
from firmware.match.score import ScoreCalibration

INT8_MAX = 127
# Float32 rounding of the re-scored dot products themselves (192 terms of unit vectors): far below this.
_FLOAT_SLACK = 1e-5
_BUILD_BLOCK = 65_536


@dataclass(frozen=True, slots=True)
class Match:
    """One candidate: watchlist subject id, raw cosine and calibrated 0..1 score."""

    subject_id: str
    cosine: float
    score: float


class WatchlistIndex:
    """Immutable exact top-k search over N subjects' unit embeddings (N×D, one row per subject).

    `matrix` is the float32 copy (used to re-score candidates); the int8 copy is packed for the SIMD scan.
    """

    def __init__(self, subject_ids: Sequence[str], embeddings: np.ndarray, calibration: ScoreCalibration,
                 version: str = "") -> None:
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(subject_ids):
            raise DataError(f"watchlist needs one embedding row per subject: {len(subject_ids)} ids, "
                            f"matrix {emb.shape}")
        norms = np.linalg.norm(emb, axis=1)
        if emb.shape[0] and (not np.all(np.isfinite(emb)) or np.any(np.abs(norms - 1.0) > 1e-3)):
            raise DataError("watchlist embeddings must be finite and L2-normalised")
        self.subject_ids = tuple(subject_ids)
        self.matrix = emb
        self.matrix.setflags(write=False)
        self.calibration = calibration
        self.version = version
        self._scan: _Int8Scan | None = _Int8Scan(emb) if emb.shape[0] else None

    def __len__(self) -> int:
        return len(self.subject_ids)

    @property
    def scan_bytes(self) -> int:
        """Bytes the int8 scan reads per search (the float32 rows are read only for a few candidates)."""
        return self._scan.nbytes if self._scan is not None else 0

    def search(self, probe: np.ndarray, k: int = 3) -> list[Match]:
        """The k most similar subjects to one unit-length probe, best first (exact, as a float32 scan)."""
        if self._scan is None:
            return []
        p = np.ascontiguousarray(probe, dtype=np.float32).reshape(1, -1)
        q8, err = self._scan.quantise(p)
        return self._matches(self._scan, self._scan.dots(q8)[0], p[0], float(err[0]), k)

    def search_many(self, probes: np.ndarray, k: int = 3) -> list[list[Match]]:
        """`search` for each row of `probes` (M×D, e.g. the faces of one frame) with one scan of the list."""
        p = np.ascontiguousarray(probes, dtype=np.float32)
        if p.ndim != 2:
            raise DataError(f"search_many needs an M×D array of probes, got shape {p.shape}")
        if self._scan is None:
            return [[] for _ in range(len(p))]
        q8, err = self._scan.quantise(p)
        dots = self._scan.dots(q8)
        return [self._matches(self._scan, dots[i], p[i], float(err[i]), k) for i in range(len(p))]

    def best(self, probe: np.ndarray) -> Match | None:
        """The single most similar subject, or None for an empty list."""
        found = self.search(probe, 1)
        return found[0] if found else None

    def _matches(self, scan: _Int8Scan, dots: np.ndarray, probe: np.ndarray, probe_err: float,
                 k: int) -> list[Match]:
        """Exact top-k from one probe's int8 dots (see the module docstring for why it is exact)."""
        n = dots.shape[0]
        k = max(1, min(k, n))
        # |q.dm| + |m.dq| + |dm.dq| with |m| = 1 (to 1e-3, checked at build) and |q| as given
        row_err = scan.row_err_max
        eps = float(np.linalg.norm(probe)) * row_err + 1.001 * probe_err + row_err * probe_err + _FLOAT_SLACK
        kth = int(dots.max()) if k == 1 else int(np.partition(dots, n - k)[n - k])
        cand = np.flatnonzero(dots >= kth - 2.0 * eps * scan.scale2)
        exact = self.matrix[cand] @ probe
        top = np.argpartition(-exact, k - 1)[:k] if k < len(cand) else np.arange(len(cand))
        top = top[np.argsort(-exact[top], kind="stable")]
        sims = exact[top]
        scores = self.calibration.score(sims)
        return [Match(self.subject_ids[int(cand[i])], float(c), float(s))
                for i, c, s in zip(top, sims, scores, strict=True)]


class _Int8Scan:
    """The rows quantised to int8 with one scale and packed for NumKong's dot-product kernels."""

    def __init__(self, matrix: np.ndarray) -> None:
        peak = float(np.abs(matrix).max())
        self.scale = INT8_MAX / peak if peak > 0 else 1.0
        self.scale2 = self.scale * self.scale
        rows = np.empty(matrix.shape, np.int8)
        self.row_err_max = 0.0
        for start in range(0, len(matrix), _BUILD_BLOCK):  # blocks: no float temporaries of the whole list
            block = matrix[start:start + _BUILD_BLOCK]
            q = np.rint(block * np.float32(self.scale))
            rows[start:start + len(block)] = q
            # |dm| for every row: how far its int8 copy (divided by the scale) is from the float32 row
            err = np.linalg.norm(block - q / np.float32(self.scale), axis=1)
            self.row_err_max = max(self.row_err_max, float(err.max()))
        self.nbytes = int(rows.nbytes)
        self._packed = numkong.dots_pack(rows)

    def quantise(self, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """int8 probes (clipped to ±127) and each one's quantisation error |dq| (same units as a cosine)."""
        q8 = np.clip(np.rint(probes * self.scale), -INT8_MAX, INT8_MAX).astype(np.int8)
        err = np.linalg.norm(probes - q8 / np.float32(self.scale), axis=1)
        return q8, err

    def dots(self, q8: np.ndarray) -> np.ndarray:
        """M×N int32 dot products of the int8 probes with every int8 row."""
        return np.asarray(numkong.dots_packed(q8, self._packed))
