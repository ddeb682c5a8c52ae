"""Open-set identification at real watchlist sizes: templates of several photos, probes of several shots.

Protocol (`lfr eval identify --gallery-sizes ...`), per person, images in a seeded shuffled order:
- a person with at least S+1 images is *mated*: its probe is its first S images fused (as the decider fuses a
  track's shots) and its gallery template the next up to K images fused (as enrolment fuses a bundle entry's
  photos); a person with fewer images has a template of up to K of them and no mated probe;
- *non-mated probes* are disjoint chunks of S images (up to `MAX_CHUNKS` per person) of every person with at
  least S images, each searched against the gallery without its own person's entry (and without entries the
  label-noise list links to it). So the gallery of N entries is searched N-1-wide by people on it and N-wide by
  people off it, and every person can serve as a non-mated probe;
- a gallery of N is every mated person (up to N) plus a seeded sample of the others.

TPIR counts mated probes whose top candidate is the right person at or above the threshold; FPIR counts
non-mated probes whose top candidate reaches it. The per-comparison false-match rate (FMR) of a configuration
is over every template × non-mated probe of different people; `projected_fpir` for N entries is
1 − (1 − FMR)^N, checked against the measured sizes.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from firmware.eval.label_noise import NO_EXCLUSIONS, LabelNoise
from firmware.eval.metrics import wilson
from firmware.match.fusion import fuse
from firmware.match.score import ScoreCalibration

SEED = 7
MAX_CHUNKS = 5
PROJECTED_SIZES = (1_000, 5_000, 10_000, 20_000)
NPL_POINTS = ((1_000, 1 / 60_000), (10_000, 1 / 6_000))  # NPL test of NEC NeoFace V4 at TPIR 89 % (2023)
GRID = np.round(np.arange(0.30, 0.95001, 0.0025), 4)  # cosine thresholds of the stored curves


@dataclass(frozen=True)
class PersonSets:
    """Templates (person → image indexes), mated probes (person → indexes), non-mated probes (person, indexes)."""

    templates: dict[str, list[int]]
    mated: dict[str, list[int]]
    non_mated: list[tuple[str, list[int]]]


def person_sets(people: dict[str, list[int]], templates: int, probe_shots: int, seed: int = SEED) -> PersonSets:
    """Split each person's images (indexes) into template, mated probe and non-mated probe chunks."""
    if templates < 1 or probe_shots < 1:
        raise ValueError("templates and probe shots must be at least 1")
    tpl: dict[str, list[int]] = {}
    mated: dict[str, list[int]] = {}
    non: list[tuple[str, list[int]]] = []
    for name in sorted(people):
        imgs = list(people[name])
        random.Random(f"{seed}:{name}").shuffle(imgs)
        if len(imgs) > probe_shots:
            mated[name] = imgs[:probe_shots]
            tpl[name] = imgs[probe_shots:probe_shots + templates]
        else:
            tpl[name] = imgs[:templates]
        for c in range(min(MAX_CHUNKS, len(imgs) // probe_shots)):
            non.append((name, imgs[c * probe_shots:(c + 1) * probe_shots]))
    return PersonSets(tpl, mated, non)


def _fused(emb: np.ndarray, groups: Sequence[list[int]]) -> np.ndarray:
    return np.stack([fuse(emb[g]) for g in groups]) if groups else np.empty((0, emb.shape[1]), np.float32)


def template_matrix(emb: np.ndarray, groups: Sequence[list[int]], fusion: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, owner of each row): one fused row per template ("mean"), or one row per photo ("max": the
    score of a template is its best photo's, which a one-vector-per-entry index cannot hold)."""
    if fusion == "mean":
        return _fused(emb, groups), np.arange(len(groups))
    if fusion == "max":
        owner = np.concatenate([np.full(len(g), i) for i, g in enumerate(groups)])
        return emb[np.concatenate(groups)], owner
    raise ValueError(f"fusion must be mean or max, not {fusion!r}")


def _scores(probes: np.ndarray, rows: np.ndarray, owner: np.ndarray, entries: int) -> np.ndarray:
    """probes × entries similarity: the max over an entry's rows (one row each for mean fusion)."""
    sims = probes @ rows.T
    if len(owner) == entries:
        return sims
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # rows are grouped by entry, in order
    return np.maximum.reduceat(sims, starts, axis=1)


@dataclass(frozen=True)
class ListResult:
    """Top-candidate scores of one gallery size: mated (cosine, right person?) and non-mated cosines."""

    gallery: int
    mated_cos: np.ndarray
    correct: np.ndarray
    non_mated_cos: np.ndarray
    mated_people: list[str]

    def threshold_at_fpir(self, fpir: float) -> float:
        allowed = int(math.floor(fpir * len(self.non_mated_cos)))
        ranked = np.sort(self.non_mated_cos)[::-1]
        return float(ranked[allowed]) + 1e-7 if allowed < len(ranked) else -1.0

    def rates(self, cosine: float) -> dict[str, Any]:
        hits = int(np.sum(self.correct & (self.mated_cos >= cosine)))
        false = int(np.sum(self.non_mated_cos >= cosine))
        m, n = len(self.mated_cos), len(self.non_mated_cos)
        return {"tpir": hits / m if m else None, "tpir_ci95": wilson(hits, m),
                "fpir": false / n if n else None, "fpir_ci95": wilson(false, n), "false_positives": false}


class ListSizeEval:
    """The embeddings of one image set, split for one configuration (templates K × probe shots S)."""

    def __init__(self, emb: np.ndarray, names: Sequence[str], templates: int, probe_shots: int, *,
                 seed: int = SEED, noise: LabelNoise = NO_EXCLUSIONS, fusion: str = "mean",
                 stems: Sequence[str] = ()) -> None:
        self.emb = emb
        self.names = list(names)
        self.stems = list(stems) or [""] * len(self.names)
        people: dict[str, list[int]] = {}
        for i, n in enumerate(self.names):
            people.setdefault(n, []).append(i)
        self.templates, self.probe_shots, self.seed, self.fusion = templates, probe_shots, seed, fusion
        self.sets = person_sets(people, templates, probe_shots, seed)
        self.people = sorted(self.sets.templates)
        self.pos = {n: i for i, n in enumerate(self.people)}
        self.tpl_rows, self.tpl_owner = template_matrix(emb, [self.sets.templates[n] for n in self.people], fusion)
        self.non_people = [n for n, _ in self.sets.non_mated]
        self.non_probes = _fused(emb, [g for _, g in self.sets.non_mated])
        linked = noise.linked_people()
        self.links: dict[str, set[str]] = {}
        for pair in linked:
            a, b = sorted(pair) if len(pair) == 2 else (next(iter(pair)),) * 2
            self.links.setdefault(a, set()).add(b)
            self.links.setdefault(b, set()).add(a)

    def _masked(self, sims: np.ndarray, probe_people: Sequence[str], cols: Sequence[str], own: bool) -> np.ndarray:
        col = {n: j for j, n in enumerate(cols)}
        for i, p in enumerate(probe_people):
            for q in self.links.get(p, ()):
                if q in col:
                    sims[i, col[q]] = -2.0
            if own and p in col:
                sims[i, col[p]] = -2.0
        return sims

    def gallery(self, size: int) -> list[str]:
        """Every mated person (up to `size`) plus a seeded sample of the others, in a fixed order."""
        mated = sorted(self.sets.mated)
        others = [n for n in self.people if n not in self.sets.mated]
        rng = random.Random(f"{self.seed}:gallery")
        rng.shuffle(mated)
        rng.shuffle(others)
        if size > len(self.people):
            raise ValueError(f"a gallery of {size} needs {size} people; the images hold {len(self.people)}")
        chosen = mated[:size] + others[:max(0, size - len(mated))]
        return sorted(chosen)

    def run(self, size: int) -> ListResult:
        """Search every mated probe of the gallery's people and every non-mated probe against a gallery of `size`."""
        names = self.gallery(size)
        keep = np.isin(self.tpl_owner, [self.pos[n] for n in names])
        remap = {self.pos[n]: j for j, n in enumerate(names)}
        rows, owner = self.tpl_rows[keep], np.array([remap[int(o)] for o in self.tpl_owner[keep]])
        mated_people = [n for n in names if n in self.sets.mated]
        mp = _fused(self.emb, [self.sets.mated[n] for n in mated_people])
        sims = self._masked(_scores(mp, rows, owner, len(names)), mated_people, names, own=False)
        best = np.argmax(sims, axis=1) if len(mp) else np.empty(0, int)
        mated_cos = sims[np.arange(len(mp)), best] if len(mp) else np.empty(0)
        correct = np.array([names[b] == n for b, n in zip(best, mated_people, strict=True)], bool)
        non_cos = []
        for start in range(0, len(self.non_probes), 2048):
            block = self.non_probes[start:start + 2048]
            s = self._masked(_scores(block, rows, owner, len(names)), self.non_people[start:start + 2048], names,
                             own=True)
            non_cos.append(s.max(axis=1))
        return ListResult(size, mated_cos.astype(np.float64), correct,
                          np.concatenate(non_cos).astype(np.float64), mated_people)

    def fmr_counts(self, people_filter: set[str] | None = None,
                   grid: np.ndarray = GRID) -> tuple[np.ndarray, int]:
        """Impostor comparisons (template of one person × non-mated probe of another, label noise left out)
        at or above each cosine of `grid`, and how many comparisons there were."""
        grid = np.asarray(grid, np.float64)
        counts = np.zeros(len(grid), np.int64)
        total = 0
        cols = self.people if people_filter is None else [n for n in self.people if n in people_filter]
        keep = np.isin(self.tpl_owner, [self.pos[n] for n in cols])
        remap = {self.pos[n]: j for j, n in enumerate(cols)}
        rows, owner = self.tpl_rows[keep], np.array([remap[int(o)] for o in self.tpl_owner[keep]])
        idx = [i for i, p in enumerate(self.non_people) if people_filter is None or p in people_filter]
        for start in range(0, len(idx), 1024):
            sel = idx[start:start + 1024]
            ppl = [self.non_people[i] for i in sel]
            s = self._masked(_scores(self.non_probes[sel], rows, owner, len(cols)), ppl, cols, own=True)
            vals = np.sort(s[s > -1.5])
            total += len(vals)
            counts += len(vals) - np.searchsorted(vals, grid, side="left")
        return counts, total

    def genuine_pass(self) -> np.ndarray:
        """Fraction of mated probes whose own template scores at or above each cosine of GRID."""
        people = sorted(self.sets.mated)
        if not people:
            return np.zeros(len(GRID))
        mp = _fused(self.emb, [self.sets.mated[n] for n in people])
        groups = [self.sets.templates[n] for n in people]
        rows, owner = template_matrix(self.emb, groups, self.fusion)
        g = np.array([float(np.max(rows[owner == i] @ mp[i])) for i in range(len(people))])
        return 1.0 - np.searchsorted(np.sort(g), GRID, side="left") / len(g)


def all_pairs_fmr(emb: np.ndarray, names: Sequence[str], stems: Sequence[str],
                  noise: LabelNoise) -> dict[str, Any]:
    """Per-comparison FMR over every pair of images of different people, with and without label noise."""
    lab = np.asarray(names)
    counts = np.zeros(len(GRID), np.int64)
    total = 0
    for start in range(0, len(emb), 1024):
        stop = min(start + 1024, len(emb))
        sims = emb[start:stop] @ emb.T
        rows = np.arange(start, stop)
        mask = (lab[rows][:, None] != lab[None, :]) & (rows[:, None] < np.arange(len(emb))[None, :])
        vals = np.sort(sims[mask])
        total += len(vals)
        counts += len(vals) - np.searchsorted(vals, GRID, side="left")
    clean, clean_total = counts.copy(), total
    excluded = [(i, j) for i, j in noise.excluded_pairs(stems, names) if names[i] != names[j]]
    for i, j in excluded:
        clean -= (GRID <= float(emb[i] @ emb[j])).astype(np.int64)
        clean_total -= 1
    return {"counts": counts, "total": total, "clean_counts": clean, "clean_total": clean_total,
            "excluded_comparisons": len(excluded)}


TAIL_MIN_COUNT = 10  # below this many false matches a measured FMR is mostly noise: the tail fit takes over


def tail_fmr(counts: np.ndarray, total: int, fit_max_count: int = 2_000) -> tuple[np.ndarray, dict[str, float]]:
    """The FMR curve on GRID, measured where at least TAIL_MIN_COUNT comparisons false-match and extrapolated
    beyond by a straight line of log10(FMR) against cosine fitted to the tail (TAIL_MIN_COUNT..fit_max_count
    false matches), raised to meet the sparse counts it replaces when they lie above it (conservative).
    Impostor scores of a normalised embedding fall off roughly exponentially there; `check_ratio` is the total
    of the sparse counts the fit replaces over the fit's expectation for them."""
    fmr = counts / max(total, 1)
    sel = (counts >= TAIL_MIN_COUNT) & (counts <= fit_max_count)
    if sel.sum() < 3:
        return fmr.astype(np.float64), {"slope_per_cosine": 0.0, "intercept": 0.0, "from_cosine": 1.0,
                                        "check_ratio": float("nan")}
    b, a = np.polyfit(GRID[sel], np.log10(fmr[sel]), 1)
    fitted = 10 ** (a + b * GRID)
    beyond = counts < TAIL_MIN_COUNT
    start = float(GRID[np.argmax(beyond)]) if beyond.any() else 1.0
    # the measured counts just past the switch (1..9 matches) against what the fit expects there; the tail is
    # heavier than the line (label noise that no list catches, look-alikes), so the line is raised to meet them
    near = beyond & (counts > 0)
    check = float(counts[near].sum() / max(fitted[near].sum() * total, 1e-12)) if near.any() else float("nan")
    if np.isfinite(check) and check > 1.0:
        fitted = fitted * check
        a += math.log10(check)
    out = np.where(beyond, np.minimum(fitted, TAIL_MIN_COUNT / max(total, 1)), fmr)
    return out, {"slope_per_cosine": float(b), "intercept": float(a), "from_cosine": start, "check_ratio": check}


def projected_fpir(fmr: float, size: int) -> float:
    """FPIR of a list of `size` entries whose comparisons each false-match at rate `fmr` (independence)."""
    return float(-np.expm1(size * np.log1p(-min(fmr, 1.0 - 1e-12))))


def fmr_at(counts: np.ndarray, total: int, cosine: float) -> float:
    """The FMR at a cosine from GRID counts (the nearest grid point at or below: a slight overestimate)."""
    i = max(0, int(np.searchsorted(GRID, cosine, side="right")) - 1)
    return float(counts[i]) / total if total else 0.0


def largest_list(fmr_curve: np.ndarray, genuine: np.ndarray, budget_fpir: float, min_tpir: float) -> int:
    """The largest list whose FPIR stays within `budget_fpir` at a threshold still passing `min_tpir`."""
    ok = genuine >= min_tpir
    if not ok.any():
        return 0
    fmr = float(np.min(fmr_curve[ok]))
    if fmr <= 0:
        return 10**9
    return int(math.floor(math.log1p(-budget_fpir) / math.log1p(-fmr)))


def lowest_cosine_for(fmr_curve: np.ndarray, size: int, fpir: float) -> float:
    """The lowest GRID cosine whose projected FPIR for `size` entries is within `fpir` (GRID's top if none)."""
    ok = np.flatnonzero([projected_fpir(float(f), size) <= fpir for f in fmr_curve])
    return float(GRID[ok[0]]) if len(ok) else float(GRID[-1])


def score_of(cal: ScoreCalibration, cosine: float) -> float:
    return float(cal.score(cosine))
