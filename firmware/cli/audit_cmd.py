"""`lfr audit verify`: walk the audit chain; on tampering name the first broken row and exit 1."""

from __future__ import annotations

import argparse

from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.store import audit
from firmware.store.db import open_config_db


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="check the tamper-evident audit log")
    asub = p.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = asub.add_parser("verify", help="verify the hash chain; exit 1 naming the first broken row")
    add_config_argument(verify)
    add_json_argument(verify)
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    db = open_config_db(app_config(args))
    try:
        result = audit.verify(db)
        seq, digest = audit.head(db)
    finally:
        db.close()
    data = result.to_dict() | {"head_seq": seq, "head_hash": digest}
    if result.ok:
        emit(args, data, f"audit log OK: {result.rows} rows, head {seq} {digest}")
        return 0
    emit(args, data, f"audit log BROKEN at row {result.broken_seq}: {result.problem}")
    return 1
