"""`lfr models verify`: the model files match the manifest, int8 files are integer inside, delegate state; with
`--edgetpu`, each int8 graph checked against the Edge TPU's published rules (firmware/accel/edgetpu_check.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from firmware.accel.backends import EdgeTpuAccelerator
from firmware.accel.edgetpu_check import check_edgetpu
from firmware.accel.modelfiles import read_manifest, verify_models
from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.embed.recognizer import PRECISION_FILE
from firmware.errors import AcceleratorError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="check the model files")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    v = msub.add_parser("verify", help="sha256 against the manifest, all-int8 check, Edge TPU delegate status")
    v.add_argument("--edgetpu", action="store_true",
                   help="also walk each int8 graph against the Edge TPU rules and name the first op that would "
                        "fall back to the CPU (exit 1 if any would)")
    add_config_argument(v)
    add_json_argument(v)
    v.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    cfg = app_config(args, state=False)
    models_dir = Path(cfg.models.dir)
    checks = verify_models(models_dir)
    try:
        EdgeTpuAccelerator(device=cfg.models.edgetpu_device).delegate()
        delegate = "Edge TPU delegate loaded"
    except AcceleratorError as exc:
        delegate = f"CPU only: {exc}"
    ok = all(c.sha256_ok and c.all_int8 is not False and not c.problem for c in checks)
    result = {"ok": ok, "models_dir": str(models_dir), "delegate": delegate,
              "files": [{"name": c.name, "file": c.file, "sha256_ok": c.sha256_ok, "all_int8": c.all_int8,
                         "float_tensors": list(c.float_tensors), "problem": c.problem} for c in checks]}
    lines = [f"{'ok ' if c.sha256_ok and not c.problem else 'BAD'} {c.file}"
             + ("" if c.all_int8 is None else f"  all tensors int8: {'yes' if c.all_int8 else 'NO'}")
             + (f"  ({c.problem})" if c.problem else "") for c in checks]
    lines.append(delegate)
    choices = Path(cfg.paths.state_dir) / PRECISION_FILE
    try:
        kept = json.loads(choices.read_text())
    except (OSError, ValueError):
        kept = {}
    chosen = {role: str(c.get("precision")) for role, c in kept.items() if isinstance(c, dict)}
    result["precision_choices"] = chosen
    lines.append(f"CPU precision kept in {choices}: " + (", ".join(
        f"{role} {p}" for role, p in sorted(chosen.items())) or "none yet (chosen at the "
        "first start of the appliance; the embedder always runs the file the score calibration was fitted on)"))
    if args.edgetpu:
        reports = [check_edgetpu(models_dir / str(e["file"])) for e in read_manifest(models_dir).values()
                   if e.get("precision") == "int8" and (models_dir / str(e["file"])).is_file()]
        result["edgetpu"] = [r.as_dict() for r in reports]
        ok = ok and all(r.ok for r in reports)
        result["ok"] = ok
        for r in reports:
            lines.append(f"{'ok ' if r.ok else 'BAD'} Edge TPU {r.file}: {r.summary()}")
            lines.extend(f"      compiler decides: {n}" for n in r.notes)
    emit(args, result, "\n".join(lines))
    return 0 if ok else 1
