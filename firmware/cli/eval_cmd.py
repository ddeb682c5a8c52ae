"""`lfr eval verify|identify|calibrate`: accuracy of the recognition core on labelled real faces."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.embed.recognizer import Recognizer
from firmware.errors import DataError
from firmware.eval import calibrate, identify, identify_sizes, verify
from firmware.eval.embedding_set import embed_images
from firmware.eval.label_noise import load_label_noise
from firmware.eval.lfw import iter_images, read_pairs
from firmware.match.score import load_calibration

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lfr" / "eval"
LFW_NOTE = ("LFW is skewed (about 78 % male, few children, older people or people of colour): these figures "
            "compare models; they do not say how the system performs on a street.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="measure accuracy on labelled face images")
    esub = p.add_subparsers(dest="eval_command", metavar="ACTION", required=True)

    v = esub.add_parser("verify", help="LFW-style 1:1 verification (accuracy, TAR at FAR, per-group rates)")
    v.add_argument("--pairs", type=Path, required=True, help="pairs file in LFW View 2 format")
    v.add_argument("--images", type=Path, required=True, help="folder of <Name>/<Name>_NNNN.jpg images")
    v.add_argument("--plot", type=Path, help="write a ROC/DET plot to this PNG file")
    v.add_argument("--by", default="", help="comma-separated attributes to break down: gender,race")
    v.add_argument("--labels", type=Path, help="folder with lfw_gender_*_names.txt / lfw_race_dict.json")
    _common(v)
    v.set_defaults(func=_verify)

    i = esub.add_parser("identify", help="open-set 1:N search: TPIR and FPIR at the operating threshold")
    i.add_argument("--images", type=Path, required=True, help="folder of <Name>/<Name>_NNNN.jpg images")
    i.add_argument("--seed", type=int, default=identify.SEED, help="seed of the gallery/probe split")
    i.add_argument("--gallery-sizes", type=_sizes, default=(),
                   help="comma-separated watchlist sizes to measure, e.g. 1000,4000 (the list-size protocol)")
    i.add_argument("--templates", type=int, default=1,
                   help="reference photos fused per gallery entry (people with fewer use what they have)")
    i.add_argument("--probe-shots", type=int, default=1, help="images of one person fused per probe, as a track")
    i.add_argument("--fusion", choices=("mean", "max"), default="mean",
                   help="template fusion: mean of embeddings (enrolment) or best photo (max over photos)")
    i.add_argument("--fpir", type=float, default=1e-3, help="target FPIR of each size's threshold (default 1e-3)")
    i.add_argument("--labels", type=Path, help="folder with lfw_gender_*_names.txt: per-gender FMR/FNMR")
    i.add_argument("--plot", type=Path, help="write the FPIR-vs-list-size plot to this PNG file")
    _common(i)
    i.set_defaults(func=_identify)

    c = esub.add_parser("calibrate", help="fit the cosine → 0..1 score mapping and write calibration.toml")
    c.add_argument("--images", type=Path, required=True, help="folder of <Name>/<Name>_NNNN.jpg images")
    c.add_argument("--fpir", type=float, default=calibrate.DEFAULT_FPIR,
                   help="open-set false-positive identification rate at the threshold (default 1e-3)")
    c.add_argument("--out", type=Path, help="models folder to write calibration.toml into (default: models.dir)")
    c.add_argument("--curves-only", action="store_true",
                   help="refit only the per-configuration FMR/TPIR curves, keep the score mapping as it is")
    _common(c)
    c.set_defaults(func=_calibrate)


def _common(p: argparse.ArgumentParser) -> None:
    add_config_argument(p)
    add_json_argument(p)
    p.add_argument("--precision", choices=("int8", "float"), default="int8",
                   help="which model files to evaluate (default int8, the deployed ones)")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                   help=f"keep embeddings per model and image here (default {DEFAULT_CACHE})")
    p.add_argument("--no-cache", dest="cache", action="store_const", const=None, help="embed every image afresh")


def _recognizer(args: argparse.Namespace) -> tuple[Recognizer, Any]:
    cfg = app_config(args, state=False)
    if not args.images.is_dir():
        raise DataError(f"image folder {args.images} does not exist")
    return Recognizer.from_config(cfg, precision=args.precision), cfg


def _verify(args: argparse.Namespace) -> int:
    by = tuple(a for a in args.by.split(",") if a)
    unknown = set(by) - {"gender", "race"}
    if unknown:
        raise DataError(f"--by accepts gender and race, not {', '.join(sorted(unknown))}")
    if by and args.labels is None:
        raise DataError("--by needs --labels DIR (the folder holding the label files)")
    pairs = read_pairs(args.pairs, args.images)
    missing = [p for p in {x for pr in pairs for x in (pr.a, pr.b)} if not p.is_file()]
    if missing:
        raise DataError(f"{len(missing)} images named in {args.pairs} are missing, e.g. {sorted(missing)[0]}")
    rec, cfg = _recognizer(args)
    r = verify.run_verify(rec, pairs, load_calibration(Path(cfg.models.dir)), by=by, labels_dir=args.labels,
                          plot=args.plot, cache_dir=args.cache)
    r["note"] = LFW_NOTE
    op = r["operating_point"]
    lines = [f"pairs {r['pairs']} in {r['folds']} folds, {r['images']} images, "
             f"{r['failed_detections']} without a detected face (aligned by mean keypoints)",
             f"accuracy {r['accuracy'] * 100:.2f} % ± {r['accuracy_std'] * 100:.2f}",
             f"TAR at FAR 1e-3: {r['tar_at_far_1e-3'] * 100:.2f} %   at FAR 1e-4: {r['tar_at_far_1e-4'] * 100:.2f} % "
             f"({r['impostor_pairs_for_far']} impostor pairs)",
             f"operating point (score {op['score_threshold']}, cosine {op['cosine']:.3f}): FNMR "
             f"{op['fnmr'] * 100:.2f} %, FMR {op['fmr_all_impostors']:.2e}"]
    for attr, groups in r.get("groups", {}).items():
        for g, x in groups.items():
            fn = "n/a" if x["fnmr"] is None else f"{x['fnmr'] * 100:.2f} % [{x['fnmr_ci95'][0] * 100:.1f}, " \
                f"{x['fnmr_ci95'][1] * 100:.1f}]"
            fm = "n/a" if x["fmr"] is None else f"{x['fmr'] * 100:.2f} % [{x['fmr_ci95'][0] * 100:.1f}, " \
                f"{x['fmr_ci95'][1] * 100:.1f}]"
            lines.append(f"{attr}={g}: FNMR {fn} over {x['genuine_pairs']} pairs; FMR {fm} over "
                         f"{x['impostor_pairs']} pairs")
    lines.append(LFW_NOTE)
    emit(args, r, "\n".join(lines))
    return 0


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of sizes") from exc
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError("gallery sizes must be whole numbers of at least 2")
    return sizes


def _identify(args: argparse.Namespace) -> int:
    rec, cfg = _recognizer(args)
    cal = load_calibration(Path(cfg.models.dir))
    r = identify.run_identify(rec, args.images, cal, seed=args.seed, cache_dir=args.cache)
    r["note"] = LFW_NOTE
    if args.gallery_sizes:
        if args.templates < 1 or args.probe_shots < 1:
            raise DataError("--templates and --probe-shots must be at least 1")
        paths = list(iter_images(args.images))
        emb = embed_images(rec, paths, cache_dir=args.cache)
        r["list_sizes"] = identify_sizes.run_sizes(
            emb.embeddings, emb.paths, args.gallery_sizes, args.templates, args.probe_shots, cal,
            noise=load_label_noise(), fpir=args.fpir, fusion=args.fusion, seed=args.seed, labels_dir=args.labels,
            plot=args.plot)
        emit(args, r, identify_sizes.text_report(r["list_sizes"]) + "\n" + LFW_NOTE)
        return 0
    text = (f"gallery {r['gallery']}, mated probes {r['mated']}, non-mated probes {r['non_mated']}, "
            f"{r['failed_detections']} images without a detected face\n"
            f"at score {r['score_threshold']}: TPIR {r['tpir'] * 100:.2f} %, FPIR {r['fpir'] * 100:.3f} %\n"
            f"TPIR at FPIR 1 %: {r['tpir_at_fpir_1e-2'] * 100:.2f} %   at FPIR 0.1 %: "
            f"{r['tpir_at_fpir_1e-3'] * 100:.2f} %\n{LFW_NOTE}")
    emit(args, r, text)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    rec, cfg = _recognizer(args)
    if args.curves_only:
        models = args.out or Path(cfg.models.dir)
        paths = list(iter_images(args.images))
        emb = embed_images(rec, paths, cache_dir=args.cache)
        curves = calibrate.fit_curves(emb.embeddings, emb.paths)
        out = calibrate.write_curves(models, curves)
        emit(args, {"file": str(out), "curves": curves},
             f"wrote {len(curves['configuration'])} FMR/TPIR curves (photos 1-5 × probe shots 1-3) to {out}; "
             "the score mapping is unchanged")
        return 0
    cal, facts = calibrate.fit(rec, args.images, fpir=args.fpir, threshold=cfg.match.threshold,
                               cache_dir=args.cache)
    out = calibrate.write(cal, facts, args.out or Path(cfg.models.dir), f"{args.images} ({args.precision})")
    emit(args, {"slope": cal.slope, "cosine_at_threshold": cal.cosine_at_threshold, "far": cal.far,
                "file": str(out), **facts},
         f"slope {cal.slope:.2f}, threshold {cal.threshold} at cosine {cal.cosine_at_threshold:.4f}: open-set FPIR "
         f"{args.fpir:g} (calibration split, TPIR {facts['calibration_tpir']:.3f}), FAR per comparison "
         f"{cal.far:.2e} over {facts['impostor_pairs']} impostor pairs; wrote {out}")
    return 0
