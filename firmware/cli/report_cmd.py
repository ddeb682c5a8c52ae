"""`lfr report DEPLOYMENT --format json|csv|html [--out FILE]`: the publishable record of a deployment."""

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
    p.add_argument("deployment", type=int, metavar="DEPLOYMENT",
                   help="deployment id (see `lfr deployment list`)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--format", choices=report.FORMATS, default="json", help="output format (default json)")
    fmt.add_argument("--json", action="store_true", help="same as --format json")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
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
        facts = report.build_report(db, args.deployment)
    finally:
        db.close()
    text = report.render(facts, "json" if args.json else args.format)
    if args.out:
        _write_atomically(Path(args.out), text)
        print(f"report of deployment {args.deployment} written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
