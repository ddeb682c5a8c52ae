#!/usr/bin/env python3
"""Watchlist round trip on LFW: build a signed bundle of N people, import it into a fresh store, and measure
how many of their other photos the active list finds (TPIR) and how many strangers it flags (FPIR).

Runs entirely through the appliance's code (see firmware/eval/roundtrip.py) in a temporary folder that is
deleted afterwards. Usage:

    .venv/bin/python scripts/watchlist_roundtrip.py --images ../shared/data/lfw/images [--subjects 200]
        [--max-probes 5] [--calibration DIR] [--config FILE] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from firmware.config import load_config
from firmware.errors import LfrError
from firmware.eval.roundtrip import SEED, run
from firmware.match.score import load_calibration
from firmware.watchlist.enrol import RecognizerEnroller


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=Path, required=True, help="folder of <Name>/<Name>_NNNN.jpg (LFW images)")
    p.add_argument("--subjects", type=int, default=200, help="people listed in the bundle (default 200)")
    p.add_argument("--max-probes", type=int, default=5, help="other photos searched per listed person")
    p.add_argument("--seed", type=int, default=SEED, help="seed of the choice of people")
    p.add_argument("--calibration", type=Path, default=None,
                   help="folder holding calibration.toml (default: models.dir of the configuration)")
    p.add_argument("--config", type=Path, default=None, help="appliance TOML (default: built-in defaults)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    try:
        cfg = load_config(args.config)
        calibration = load_calibration(args.calibration or Path(cfg.models.dir))
        enroller = RecognizerEnroller.from_config(cfg)
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="lfr-roundtrip-") as work:
            result = run(args.images, Path(work), enroller, calibration, subjects=args.subjects,
                         max_probes=args.max_probes, seed=args.seed)
        seconds = time.monotonic() - start
    except LfrError as exc:
        print(f"watchlist_roundtrip: error: {exc}", file=sys.stderr)
        return 2
    doc = {**result.to_dict(), "seconds": round(seconds, 1), "backend": enroller.recognizer.health()}
    if args.json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        r = result
        print(f"{r.subjects} listed, {r.accepted} enrolled (rejected: {r.rejected or 'none'}), "
              f"{r.duplicates} duplicate pairs\n"
              f"TPIR {r.tpir:.3f}: {r.found} of {r.probes} other photos found at score >= {r.threshold} "
              f"({r.probes_not_embedded} failed detection or quality)\n"
              f"TPIR of enrolled people {r.tpir_enrolled:.3f} ({r.enrolled_probes} photos)\n"
              f"subjects found in at least one other photo: {r.subjects_found} of {r.accepted}\n"
              f"FPIR {r.fpir:.3f}: {r.impostor_alerts} of {r.impostor_probes} strangers alerted\n"
              f"{seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
