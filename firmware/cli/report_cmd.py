"""`lfr report DEPLOYMENT --format json|csv|html [--out FILE]`: the publishable record of a deployment.

DEPLOYMENT is its number or its authority reference. The HTML page goes to a file named after the deployment
unless `--out` says otherwise (`--out -` for standard output); JSON and CSV, which scripts read, go to standard
output unless `--out` names a file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from firmware.cli.common import add_config_argument, app_config
from firmware.errors import StorageError
from firmware.store import report
from firmware.store.db import open_config_db


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write a deployment's publishable report")
    p.add_argument("deployment", metavar="DEPLOYMENT",
                   help="deployment number or authority reference, e.g. 3 or REF-2026-0142 (`lfr deployment list`)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--format", choices=report.FORMATS, default="json", help="output format (default json)")
    fmt.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--out", metavar="FILE",
                   help="write to FILE ('-': standard output); default for html: lfr-report-REF-N.html here")
    add_config_argument(p)
    p.set_defaults(func=_report)


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a failed run never leaves half a report."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise StorageError(f"cannot write report {path}: {exc}") from exc


def _report(args: argparse.Namespace) -> int:
    db = open_config_db(app_config(args))
    try:
        facts = report.build_report(db, report.find_deployment(db, args.deployment))
    finally:
        db.close()
    fmt = "json" if args.json else args.format
    text = report.render(facts, fmt)
    out = args.out or (report.report_file_name(facts, fmt) if fmt == "html" else "-")
    if out == "-":
        sys.stdout.write(text)
    else:
        _write_atomically(Path(out), text)
        print(f"report of deployment {facts['deployment']} ({facts['authority']}) written to {out}",
              file=sys.stderr)
    return 0
