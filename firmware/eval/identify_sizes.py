"""`lfr eval identify --gallery-sizes ...`: the figures of `firmware.eval.listsize` for one configuration.

Reports per gallery size (threshold at the target FPIR on that gallery, TPIR and FPIR with 95 % intervals, and
the same at the policy threshold, score 0.6), the per-comparison FMR over all impostor image pairs and over
the configuration's template × probe comparisons (with and without the label-noise list), the projected FPIR
at 1k–20k entries checked against the measured sizes, per-gender FMR and FNMR at the largest size, and a plot.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from firmware.eval.label_noise import NO_EXCLUSIONS, LabelNoise
from firmware.eval.lfw import read_labels
from firmware.eval.listsize import (
    GRID,
    NPL_POINTS,
    PROJECTED_SIZES,
    ListResult,
    ListSizeEval,
    all_pairs_fmr,
    largest_list,
    lowest_cosine_for,
    projected_fpir,
    tail_fmr,
)
from firmware.eval.metrics import wilson
from firmware.match.score import ScoreCalibration

NPL_10K_FPIR = 1 / 6_000
BUDGET_FPIR = 1e-4  # 1 false alert per 10,000 tracks, the default budget


def _tpir90_cosine(res: ListResult) -> float:
    """The highest cosine at which TPIR is still at least 90 % (comparable with NPL's 89 %)."""
    ok = [float(c) for c in GRID if (res.rates(float(c))["tpir"] or 0.0) >= 0.90]
    return max(ok) if ok else float(GRID[0])


def _katz_ratio(a: int, n1: int, b: int, n2: int) -> dict[str, Any]:
    """Ratio of two rates a/n1 ÷ b/n2 with a 95 % Katz log interval (0.5 added to empty cells)."""
    if n1 == 0 or n2 == 0:
        return {"ratio": None, "ci95": None}
    a_, b_ = (a + 0.5, b + 0.5) if a == 0 or b == 0 else (a, b)
    r = (a_ / n1) / (b_ / n2)
    se = math.sqrt(1 / a_ - 1 / n1 + 1 / b_ - 1 / n2)
    return {"ratio": r, "ci95": (r * math.exp(-1.96 * se), r * math.exp(1.96 * se))}


def by_gender(ev: ListSizeEval, res: ListResult, labels_dir: Path, cosines: dict[str, float]) -> dict[str, Any]:
    """FMR (same-gender impostor comparisons) and FNMR (mated probes) per gender at each named cosine."""
    table = read_labels(labels_dir).get("gender", {})
    votes: dict[str, Counter[str]] = {}
    for i, name in enumerate(ev.names):
        g = table.get(ev.stems[i] + ".jpg")
        if g is not None:
            votes.setdefault(name, Counter())[g] += 1
    gender = {n: c.most_common(1)[0][0] for n, c in votes.items()}
    out: dict[str, Any] = {"people_labelled": len(gender)}
    for label, cos in cosines.items():
        groups: dict[str, Any] = {}
        fm_counts: dict[str, tuple[int, int]] = {}
        for g in ("female", "male"):
            members = {n for n, x in gender.items() if x == g}
            counts, total = ev.fmr_counts(members, np.array([cos]))
            fm = int(counts[0])
            idx = [i for i, n in enumerate(res.mated_people) if n in members]
            miss = int(sum(not (res.correct[i] and res.mated_cos[i] >= cos) for i in idx))
            fm_counts[g] = (fm, total)
            groups[g] = {"people": len(members), "impostor_comparisons": total, "false_matches": fm,
                         "fmr": fm / total if total else None, "fmr_ci95": wilson(fm, total),
                         "mated": len(idx), "fnmr": miss / len(idx) if idx else None,
                         "fnmr_ci95": wilson(miss, len(idx))}
        ratio = _katz_ratio(*fm_counts["female"], *fm_counts["male"])
        out[label] = {"cosine": cos, "groups": groups, "fmr_ratio_female_to_male": ratio["ratio"],
                      "fmr_ratio_ci95": ratio["ci95"]}
    return out


def run_sizes(emb: np.ndarray, paths: Sequence[Path], sizes: Sequence[int], templates: int, probe_shots: int,
              calibration: ScoreCalibration, *, noise: LabelNoise, fpir: float = 1e-3, fusion: str = "mean",
              seed: int = 7, labels_dir: Path | None = None, plot: Path | None = None) -> dict[str, Any]:
    """Every figure of the list-size protocol for one configuration (see the module docstring)."""
    names = [p.parent.name for p in paths]
    stems = [p.stem for p in paths]
    ev = ListSizeEval(emb, names, templates, probe_shots, seed=seed, noise=noise, fusion=fusion, stems=stems)
    raw = ListSizeEval(emb, names, templates, probe_shots, seed=seed, noise=NO_EXCLUSIONS, fusion=fusion)
    policy_cos = calibration.cosine_at_threshold
    rows, raw_rows, results = [], [], []
    for size in sorted(sizes):
        res = ev.run(size)
        results.append(res)
        t = res.threshold_at_fpir(fpir)
        rows.append({"gallery": size, "templates": templates, "probe_shots": probe_shots,
                     "mated": len(res.mated_cos), "non_mated": len(res.non_mated_cos), **res.rates(t),
                     "threshold_cosine": t, "threshold_score": float(calibration.score(t)),
                     "at_policy_threshold": {"threshold_score": calibration.threshold, "threshold_cosine": policy_cos,
                                             **res.rates(policy_cos)},
                     "rank1_accuracy": float(np.mean(res.correct)) if len(res.correct) else None})
        r0 = raw.run(size)
        t0 = r0.threshold_at_fpir(fpir)
        raw_rows.append({"gallery": size, **r0.rates(t0), "threshold_cosine": t0,
                         "at_policy_threshold": r0.rates(policy_cos)})
    largest = results[-1]
    t_op = rows[-1]["threshold_cosine"]
    counts, total = ev.fmr_counts()
    raw_counts, raw_total = raw.fmr_counts()
    exact = {r["gallery"]: r["threshold_cosine"] for r in rows}
    at_t = np.array(sorted({*exact.values(), t_op, policy_cos}))
    exact_counts, _ = ev.fmr_counts(grid=at_t)
    fmr_exact = {float(c): int(k) / total for c, k in zip(at_t, exact_counts, strict=True)}
    check = [{"gallery": r["gallery"], "threshold_cosine": r["threshold_cosine"], "measured_fpir": r["fpir"],
              "measured_fpir_ci95": r["fpir_ci95"],
              "projected_fpir": projected_fpir(fmr_exact[r["threshold_cosine"]], r["gallery"])} for r in rows]
    check += [{"gallery": r["gallery"], "threshold_cosine": policy_cos,
               "measured_fpir": r["at_policy_threshold"]["fpir"],
               "measured_fpir_ci95": r["at_policy_threshold"]["fpir_ci95"],
               "projected_fpir": projected_fpir(fmr_exact[policy_cos], r["gallery"])} for r in rows]
    genuine = np.array([largest.rates(float(c))["tpir"] or 0.0 for c in GRID])
    fmr_curve, tail = tail_fmr(counts, total)
    projections = {}
    for n in PROJECTED_SIZES:
        c_npl = lowest_cosine_for(fmr_curve, n, NPL_10K_FPIR)
        c_budget = lowest_cosine_for(fmr_curve, n, BUDGET_FPIR)
        projections[str(n)] = {
            "fpir_at_operating_threshold": projected_fpir(fmr_exact[t_op], n),
            "fpir_at_policy_threshold": projected_fpir(fmr_exact[policy_cos], n),
            "extrapolated": bool(c_budget >= tail["from_cosine"] or c_npl >= tail["from_cosine"]),
            "threshold_cosine_for_1_in_6000": c_npl, "tpir_at_1_in_6000": largest.rates(c_npl)["tpir"],
            "threshold_cosine_for_budget": c_budget, "tpir_at_budget": largest.rates(c_budget)["tpir"]}
    apf = all_pairs_fmr(emb, names, stems, noise)
    all_pairs = {"comparisons": apf["total"], "comparisons_without_label_noise": apf["clean_total"],
                 "excluded_comparisons": apf["excluded_comparisons"],
                 "fmr_at_policy_threshold": _at(apf["counts"], apf["total"], policy_cos),
                 "fmr_at_policy_threshold_without_label_noise": _at(apf["clean_counts"], apf["clean_total"],
                                                                    policy_cos)}
    for target in (1e-5, 1e-6):
        all_pairs[f"cosine_at_fmr_{target:g}"] = _cos_at(apf["counts"], apf["total"], target)
        all_pairs[f"cosine_at_fmr_{target:g}_without_label_noise"] = _cos_at(apf["clean_counts"], apf["clean_total"],
                                                                           target)
    out: dict[str, Any] = {
        "configuration": {"templates": templates, "probe_shots": probe_shots, "fusion": fusion, "seed": seed,
                          "target_fpir": fpir},
        "images": len(paths), "people": len(set(names)), "sizes": rows,
        "label_noise": {"entries": len(noise.entries), "sizes_with_label_noise": raw_rows,
                        "fmr_at_operating_threshold_with_label_noise": _at(raw_counts, raw_total, t_op)},
        "fmr": {"comparisons": total, "at_operating_threshold": fmr_exact[t_op], "tail_fit": tail,
                "at_policy_threshold": fmr_exact[policy_cos], "operating_threshold_cosine": t_op,
                "all_image_pairs": all_pairs},
        "projected_fpir": projections, "projection_check": check,
        "largest_list_at_tpir_90": {"budget_1_per_10k": largest_list(fmr_curve, genuine, BUDGET_FPIR, 0.90),
                                    "npl_1_in_6000": largest_list(fmr_curve, genuine, NPL_10K_FPIR, 0.90)},
    }
    if labels_dir is not None:
        c_1e4 = _cos_at(counts, total, 1e-4)
        out["by_gender"] = {"gallery": largest.gallery,
                            **by_gender(ev, largest, labels_dir, {"operating_threshold": t_op, "fmr_1e-4": c_1e4})}
    if plot is not None:
        out["plot"] = str(plot_fpir_vs_size(emb, names, stems, sizes, templates, probe_shots, noise, fusion, seed,
                                            plot))
    return out


def _at(counts: np.ndarray, total: int, cosine: float) -> float:
    i = max(0, int(np.searchsorted(GRID, cosine, side="right")) - 1)
    return float(counts[i]) / total if total else 0.0


def _cos_at(counts: np.ndarray, total: int, fmr: float) -> float:
    """The lowest GRID cosine whose FMR is at most `fmr`."""
    ok = np.flatnonzero(counts / max(total, 1) <= fmr)
    return float(GRID[ok[0]]) if len(ok) else float(GRID[-1])


def plot_fpir_vs_size(emb: np.ndarray, names: Sequence[str], stems: Sequence[str], sizes: Sequence[int],
                      templates: int, probe_shots: int, noise: LabelNoise, fusion: str, seed: int,
                      out: Path) -> Path:
    """FPIR against list size at each configuration's TPIR-90 % threshold (projected line, measured points),
    the NPL points of NEC NeoFace V4 (TPIR 89 %) and the 1-per-10,000 budget marked."""
    from matplotlib.figure import Figure  # evaluation-only dependency, not on the van

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    xs = np.geomspace(100, 30_000, 60)
    configs = sorted({(1, 1), (templates, 1), (1, probe_shots), (templates, probe_shots)})
    for k, s in configs:
        ev = ListSizeEval(emb, list(names), k, s, seed=seed, noise=noise, fusion=fusion)
        largest = ev.run(max(sizes))
        c = _tpir90_cosine(largest)
        counts, total = ev.fmr_counts(grid=np.array([c]))
        fmr = int(counts[0]) / total
        line = ax.plot(xs, [max(projected_fpir(fmr, int(x)), 1e-7) for x in xs],
                       label=f"{k} photo(s), {s} shot(s): cosine {c:.3f}")[0]
        meas = [ev.run(n).rates(c)["fpir"] or 0.0 for n in sorted(sizes)]
        ax.plot(sorted(sizes), [max(m, 1e-7) for m in meas], "o", color=line.get_color())
    ax.plot([p[0] for p in NPL_POINTS], [p[1] for p in NPL_POINTS], "k*", markersize=12,
            label="NPL 2023, NEC NeoFace V4 (TPIR 89 %)")
    ax.axhline(BUDGET_FPIR, color="grey", linestyle="--", label="budget: 1 per 10,000 tracks")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("watchlist size (entries)")
    ax.set_ylabel("FPIR (false alerts per passer-by)")
    ax.set_title("FPIR vs list size at TPIR 90 % (lines: projected from FMR; dots: measured)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return out


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.2f} %"


def _ci(ci: Sequence[float]) -> str:
    return f"[{ci[0] * 100:.2f}, {ci[1] * 100:.2f}]"


def text_report(r: dict[str, Any]) -> str:
    """The human summary of `run_sizes`."""
    c = r["configuration"]
    lines = [f"{r['images']} images of {r['people']} people; templates {c['templates']} ({c['fusion']}), "
             f"probe shots {c['probe_shots']}; {r['label_noise']['entries']} label-noise entries left out"]
    for s in r["sizes"]:
        p = s["at_policy_threshold"]
        lines.append(f"gallery {s['gallery']}: {s['mated']} mated, {s['non_mated']} non-mated probes; at FPIR "
                     f"{_pct(s['fpir'])} {_ci(s['fpir_ci95'])} (cosine {s['threshold_cosine']:.4f}, score "
                     f"{s['threshold_score']:.3f}) TPIR {_pct(s['tpir'])} {_ci(s['tpir_ci95'])}; at score 0.6: "
                     f"TPIR {_pct(p['tpir'])}, FPIR {_pct(p['fpir'])} {_ci(p['fpir_ci95'])}")
    for s in r["label_noise"]["sizes_with_label_noise"]:
        lines.append(f"  with label noise, gallery {s['gallery']}: TPIR {_pct(s['tpir'])} at FPIR {_pct(s['fpir'])} "
                     f"(cosine {s['threshold_cosine']:.4f}); at score 0.6 FPIR "
                     f"{_pct(s['at_policy_threshold']['fpir'])}")
    f = r["fmr"]
    a = f["all_image_pairs"]
    lines.append(f"FMR per comparison at the operating cosine {f['operating_threshold_cosine']:.4f}: "
                 f"{f['at_operating_threshold']:.2e} over {f['comparisons']} template × probe comparisons "
                 f"({r['label_noise']['fmr_at_operating_threshold_with_label_noise']:.2e} with label noise); "
                 f"all {a['comparisons']} image pairs at score 0.6: {a['fmr_at_policy_threshold']:.2e} "
                 f"({a['fmr_at_policy_threshold_without_label_noise']:.2e} without the "
                 f"{a['excluded_comparisons']} listed comparisons)")
    for ck in r["projection_check"]:
        lines.append(f"projection check, gallery {ck['gallery']} at cosine {ck['threshold_cosine']:.4f}: measured "
                     f"{_pct(ck['measured_fpir'])} {_ci(ck['measured_fpir_ci95'])}, projected "
                     f"{_pct(ck['projected_fpir'])}")
    for n, p in r["projected_fpir"].items():
        lines.append(f"projected at {n}: FPIR {_pct(p['fpir_at_operating_threshold'])} at the operating cosine; "
                     f"1 in 6,000 needs cosine {p['threshold_cosine_for_1_in_6000']:.4f} (TPIR "
                     f"{_pct(p['tpir_at_1_in_6000'])}); 1 in 10,000 needs {p['threshold_cosine_for_budget']:.4f} "
                     f"(TPIR {_pct(p['tpir_at_budget'])})")
    tf = f["tail_fit"]
    lines.append(f"FMR tail: measured down to {10 / f['comparisons']:.1e}; beyond cosine {tf['from_cosine']:.4f} "
                 f"extrapolated as log10 FMR = {tf['intercept']:.2f} {tf['slope_per_cosine']:+.2f} × cosine "
                 f"(the 1–9 match counts it replaces: {tf['check_ratio']:.2f} × the fit)")
    big = r["largest_list_at_tpir_90"]
    lines.append(f"largest list at TPIR 90 %: {big['budget_1_per_10k']} entries within 1 per 10,000, "
                 f"{big['npl_1_in_6000']} within 1 in 6,000")
    for label, g in (r.get("by_gender") or {}).items():
        if not isinstance(g, dict):
            continue
        parts = [f"{k}: FMR {v['fmr']:.2e} [{v['fmr_ci95'][0]:.1e}, {v['fmr_ci95'][1]:.1e}] "
                 f"({v['false_matches']}/{v['impostor_comparisons']}), "
                 f"FNMR {_pct(v['fnmr'])} {_ci(v['fnmr_ci95'])}" for k, v in g["groups"].items()]
        ratio = g["fmr_ratio_female_to_male"]
        ci = g["fmr_ratio_ci95"]
        lines.append(f"gender at {label} (cosine {g['cosine']:.4f}): " + "; ".join(parts) +
                     (f"; FMR ratio F/M {ratio:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ratio is not None else ""))
    return "\n".join(lines)
