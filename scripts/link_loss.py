#!/usr/bin/env python3
"""Run the link's loss scenario (see tests/link_loss.py) for several seeds and print its figures.

    .venv/bin/python scripts/link_loss.py --alerts 1000 --seeds 5 [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from link_loss import run_loss  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--viewer-restarts", type=int, default=20)
    parser.add_argument("--appliance-kills", type=int, default=5)
    parser.add_argument("--network-cuts", type=int, default=10)
    parser.add_argument("--stream-seconds", type=float, default=8.0, help="how long making the alerts takes")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows, failed = [], 0
    for seed in range(1, args.seeds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            r = run_loss(Path(tmp), args.alerts, args.viewer_restarts, args.appliance_kills,
                         args.network_cuts, args.stream_seconds, seed=seed)
        row = {"seed": seed, "alerts": r.alerts, "made": r.made, "delivered": len(r.delivered_ids),
               "unique": len(set(r.delivered_ids)), "exactly_once_in_order": r.exactly_once_in_order,
               "viewer_restarts": r.viewer_restarts, "network_cuts": r.network_cuts,
               "appliance_kills": r.appliance_kills, "viewer_connections": r.viewer_connections,
               "cuts_severing": r.cuts_severing,
               "duplicates_dropped": r.duplicates_dropped, "outbox_left": r.outbox_left,
               "seconds": round(r.seconds, 1)}
        failed += not r.exactly_once_in_order
        rows.append(row)
        if not args.json:
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
