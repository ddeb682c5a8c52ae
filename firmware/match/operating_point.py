"""The operating point of a loaded watchlist: the threshold that holds a false-alert budget for its size.

A track's chance of a false alert grows with the list: every entry is one more chance for a passer-by to
look like someone on it. `models/calibration.toml` holds, per configuration (photos per entry × fused
probe shots), the per-comparison false-match rate (FMR) and the identification rate (TPIR) against cosine,
measured by `lfr eval calibrate` (`[curves]`). For a list of entries with k_i photos each, a track fused
from S shots false-alerts at cosine c with probability

    FPIR(c) = 1 − Π_i (1 − FMR_{k_i,S}(c))

With `match.policy = "budget"` the threshold is the lowest cosine whose FPIR is within
`match.false_alerts_per_10k_tracks` / 10,000, never below `match.threshold` (the published policy floor,
score 0.6). When that threshold leaves an expected TPIR below `match.min_tpir`, the import still succeeds
but the operating point says so (`meets_min_tpir = false`) and names the largest list of the same make-up
that the budget could hold at `min_tpir`. With `"fixed"`, the threshold is `match.threshold` and the same
expectations are only reported.

The single-shot path of the decider (one face far above the threshold) is held to the same budget with the
one-shot curve: its score is raised likewise, never below `pipeline.single_shot_score`.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from firmware.errors import ModelError
from firmware.match.score import CALIBRATION_FILE, ScoreCalibration

POLICIES = ("budget", "fixed")


@dataclass(frozen=True)
class Curve:
    """FMR and TPIR against `cosines` for entries of `templates` photos and probes of `probe_shots` shots."""

    templates: int
    probe_shots: int
    cosines: np.ndarray
    fmr: np.ndarray
    tpir: np.ndarray


@dataclass(frozen=True)
class Curves:
    """Every measured configuration; `get` picks the nearest one measured (photos and shots capped)."""

    by_config: dict[tuple[int, int], Curve]

    def get(self, templates: int, probe_shots: int) -> Curve:
        ks = sorted({k for k, _ in self.by_config})
        ss = sorted({s for _, s in self.by_config})
        k = max([x for x in ks if x <= max(templates, ks[0])])
        s = max([x for x in ss if x <= max(probe_shots, ss[0])])
        return self.by_config[(k, s)]


def load_curves(models_dir: Path) -> Curves | None:
    """The `[curves]` of models/calibration.toml; None when the file has none (an older calibration)."""
    path = models_dir / CALIBRATION_FILE
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        return None
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"score calibration {path} is malformed: {exc}") from exc
    cur = doc.get("curves")
    if not isinstance(cur, dict):
        return None
    try:
        n = int(cur["points"])
        cosines = float(cur["cosine_start"]) + float(cur["cosine_step"]) * np.arange(n)
        out: dict[tuple[int, int], Curve] = {}
        for c in cur["configuration"]:
            fmr, tpir = np.asarray(c["fmr"], np.float64), np.asarray(c["tpir"], np.float64)
            if fmr.shape != (n,) or tpir.shape != (n,):
                raise ValueError(f"a curve needs {n} points")
            out[(int(c["templates"]), int(c["probe_shots"]))] = Curve(int(c["templates"]), int(c["probe_shots"]),
                                                                      cosines, fmr, tpir)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"[curves] of {path} is malformed ({exc}); run `lfr eval calibrate` again") from exc
    return Curves(out) if out else None


@dataclass(frozen=True)
class OperatingPoint:
    """What the appliance expects of the list it loaded: shown at import, in status, audit, viewer, report."""

    policy: str
    list_size: int
    templates_per_entry: float
    probe_shots: int
    threshold_score: float
    threshold_cosine: float
    single_shot_score: float
    expected_false_alerts_per_10k_tracks: float
    expected_tpir: float
    budget_false_alerts_per_10k_tracks: float
    min_tpir: float
    meets_budget: bool
    meets_min_tpir: bool
    raised: bool
    largest_list_for_min_tpir: int | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN, for no curves, becomes None), with the warning sentence when there is one."""
        d = {k: (None if isinstance(v, float) and not math.isfinite(v) else round(v, 6) if isinstance(v, float)
                 else v) for k, v in asdict(self).items()}
        d["warning"] = self.warning
        return d

    @property
    def warning(self) -> str | None:
        """The loud sentence when the list is too large for the budget at `min_tpir` (or, with a fixed
        threshold, when the budget is not held); None when all is well."""
        if self.policy == "fixed" and not self.meets_budget and self.expected_false_alerts_per_10k_tracks > 0:
            return (f"FIXED THRESHOLD OVER THE FALSE-ALERT BUDGET: {self.list_size:,} entries at score "
                    f"{self.threshold_score:.3f} expect {self.expected_false_alerts_per_10k_tracks:.1f} false alerts "
                    f"per 10,000 tracks (budget {self.budget_false_alerts_per_10k_tracks:g})")
        if self.meets_min_tpir:
            return None
        hold = (f"the budget holds at most {self.largest_list_for_min_tpir:,} entries of this make-up"
                if self.largest_list_for_min_tpir is not None else "no list size could be checked")
        return (f"WATCHLIST TOO LARGE FOR THE FALSE-ALERT BUDGET: {self.list_size:,} entries need threshold "
                f"{self.threshold_score:.3f} to keep {self.budget_false_alerts_per_10k_tracks:g} false alerts per "
                f"10,000 tracks, where only {self.expected_tpir:.0%} of listed people are expected to be found "
                f"(minimum {self.min_tpir:.0%}); {hold}")


def _fpir(curves: Curves, counts: Counter[int], shots: int) -> np.ndarray:
    """FPIR against cosine for a list whose entries have the counted numbers of photos."""
    log_pass = np.zeros_like(next(iter(curves.by_config.values())).cosines)
    for k, n in counts.items():
        log_pass += n * np.log1p(-np.minimum(curves.get(k, shots).fmr, 1 - 1e-12))
    return -np.expm1(log_pass)


def _tpir(curves: Curves, counts: Counter[int], shots: int) -> np.ndarray:
    total = sum(counts.values())
    return sum(n * curves.get(k, shots).tpir for k, n in counts.items()) / total  # type: ignore[return-value]


def _largest_list(curves: Curves, counts: Counter[int], shots: int, budget: float, min_tpir: float,
                  floor_cos: float) -> int:
    """The largest list of the same make-up whose budget threshold still expects `min_tpir`."""
    cos = next(iter(curves.by_config.values())).cosines
    tpir = _tpir(curves, counts, shots)
    ok = np.flatnonzero((tpir >= min_tpir) & (cos >= floor_cos - 1e-9))
    if not len(ok):
        return 0
    total = sum(counts.values())
    per_entry = sum(n * curves.get(k, shots).fmr[ok[-1]] for k, n in counts.items()) / total
    if per_entry <= 0:
        return 10**9
    return int(math.floor(math.log1p(-budget) / math.log1p(-per_entry)))


def operating_point(calibration: ScoreCalibration, curves: Curves | None, templates: Sequence[int], *,
                    policy: str, budget_per_10k: float, min_tpir: float, floor_score: float, probe_shots: int,
                    single_shot_score: float) -> OperatingPoint:
    """The threshold in force for a list whose entries hold `templates[i]` fused photos (see the module)."""
    if policy not in POLICIES:
        raise ValueError(f"match.policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    n = len(templates)
    floor_cos = calibration.cosine(floor_score)
    mean_k = float(np.mean(templates)) if n else 0.0
    if curves is None or n == 0:
        return OperatingPoint(policy, n, mean_k, probe_shots, floor_score, floor_cos, single_shot_score,
                              float("nan"), float("nan"), budget_per_10k, min_tpir, False, True, False, None,
                              note="no FMR curves in models/calibration.toml: run `lfr eval calibrate`; "
                                   "the fixed threshold is in force and nothing is expected")
    counts = Counter(int(k) for k in templates)
    budget = budget_per_10k / 10_000
    cos = next(iter(curves.by_config.values())).cosines
    fpir = _fpir(curves, counts, probe_shots)
    within = np.flatnonzero(fpir <= budget)
    budget_cos = float(cos[within[0]]) if len(within) else float(cos[-1])
    one_shot = _fpir(curves, counts, 1)
    within1 = np.flatnonzero(one_shot <= budget)
    single_cos = float(cos[within1[0]]) if len(within1) else float(cos[-1])
    if policy == "budget" and budget_cos > floor_cos:
        thr_cos, thr_score, raised = budget_cos, float(calibration.score(budget_cos)), True
    else:
        thr_cos, thr_score, raised = floor_cos, floor_score, False
    single = single_shot_score
    if policy == "budget":
        single = max(single_shot_score, float(calibration.score(single_cos)), thr_score)
    i = min(len(cos) - 1, max(0, int(np.searchsorted(cos, thr_cos - 1e-9))))
    expected_fpir = float(np.interp(thr_cos, cos, fpir))
    expected_tpir = float(_tpir(curves, counts, probe_shots)[i])
    return OperatingPoint(
        policy=policy, list_size=n, templates_per_entry=mean_k, probe_shots=probe_shots,
        threshold_score=thr_score, threshold_cosine=thr_cos, single_shot_score=single,
        expected_false_alerts_per_10k_tracks=expected_fpir * 10_000, expected_tpir=expected_tpir,
        budget_false_alerts_per_10k_tracks=budget_per_10k, min_tpir=min_tpir,
        meets_budget=bool(expected_fpir <= budget * (1 + 1e-6)), meets_min_tpir=bool(expected_tpir >= min_tpir),
        raised=raised,
        largest_list_for_min_tpir=_largest_list(curves, counts, probe_shots, budget, min_tpir, floor_cos))


@dataclass(frozen=True)
class ThresholdPolicy:
    """`[match]` policy settings plus the decider's probe shots and the measured curves, for imports."""

    policy: str
    budget_per_10k: float
    min_tpir: float
    floor_score: float
    probe_shots: int
    single_shot_score: float
    curves: Curves | None

    @classmethod
    def from_config(cls, cfg: Any, models_dir: Path | None = None) -> ThresholdPolicy:
        """From an AppConfig: `[match]`, `pipeline.min_shots` (a track alerts on that many fused shots)."""
        m, p = cfg.match, cfg.pipeline
        return cls(m.policy, m.false_alerts_per_10k_tracks, m.min_tpir, m.threshold, p.min_shots,
                   max(p.single_shot_score, m.threshold), load_curves(models_dir or Path(cfg.models.dir)))

    def evaluate(self, calibration: ScoreCalibration, templates: Sequence[int]) -> OperatingPoint:
        return operating_point(calibration, self.curves, templates, policy=self.policy,
                               budget_per_10k=self.budget_per_10k, min_tpir=self.min_tpir,
                               floor_score=self.floor_score, probe_shots=self.probe_shots,
                               single_shot_score=self.single_shot_score)


def describe(op: dict[str, Any]) -> list[str]:
    """Text lines for an operating point as stored (CLI import and status, deployment report)."""
    if not op:
        return ["operating point: not recorded (imported before the false-alert budget existed)"]
    fa = op.get("expected_false_alerts_per_10k_tracks")
    tp = op.get("expected_tpir")
    known = isinstance(fa, (int, float)) and isinstance(tp, (int, float))
    lines = [f"operating point ({op.get('policy')}): {op.get('list_size')} entries, "
             f"{op.get('templates_per_entry', 0):.1f} photos per entry, probes of {op.get('probe_shots')} shots; "
             f"threshold score {op.get('threshold_score', 0):.3f} (cosine {op.get('threshold_cosine', 0):.4f})"
             f"{', raised above the policy floor' if op.get('raised') else ''}",
             (f"  expected: {fa:.2f} false alerts per 10,000 tracks (budget "
              f"{op.get('budget_false_alerts_per_10k_tracks')}), {tp:.1%} of listed people found"
              if known else f"  expected: unknown ({op.get('note', '')})")]
    if op.get("warning"):
        lines.append(f"  !! {op['warning']}")
    return lines
