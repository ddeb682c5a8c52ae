"""`lfr deployment start|stop|list`: open an authorised deployment, close it (wiping its watchlist), list."""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime

from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.hardware.clock import SystemClock
from firmware.store import deployments
from firmware.store.db import open_config_db


def cli_actor() -> str:
    """Who ran the command, for the audit log: the local user account."""
    return f"cli:{getpass.getuser()}"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("deployment", help="start, stop and list authorised deployments")
    dsub = p.add_subparsers(dest="deployment_command", metavar="ACTION", required=True)
    start = dsub.add_parser("start", help="open a deployment (needs an authorisation reference)")
    start.add_argument("--authority", required=True, metavar="REF", help="authorisation reference")
    start.add_argument("--officer", required=True, metavar="NAME", help="officer responsible for it")
    start.add_argument("--location", required=True, metavar="TEXT", help="where the van is deployed")
    start.set_defaults(func=_start)
    stop = dsub.add_parser("stop", help="close the open deployment and wipe its watchlist")
    stop.set_defaults(func=_stop)
    lst = dsub.add_parser("list", help="list every deployment")
    lst.set_defaults(func=_list)
    for parser in (start, stop, lst):
        add_config_argument(parser)
        add_json_argument(parser)


def _when(t: float | None) -> str:
    return "open" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _start(args: argparse.Namespace) -> int:
    cfg = app_config(args)
    db = open_config_db(cfg)
    try:
        dep = deployments.start(db, authority=args.authority, officer=args.officer, location=args.location,
                                threshold=cfg.match.threshold, clock=SystemClock(), actor=cli_actor())
    finally:
        db.close()
    emit(args, dep.to_dict(), f"deployment {dep.id} started at {dep.location} (authority {dep.authority}, "
                              f"threshold {dep.threshold})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    db = open_config_db(app_config(args))
    try:
        result = deployments.stop(db, clock=SystemClock(), actor=cli_actor())
    finally:
        db.close()
    dep = result.deployment
    emit(args, {"deployment": dep.to_dict(), "entries_wiped": result.entries_wiped,
                "wal_truncated": result.wal_truncated},
         f"deployment {dep.id} stopped; {result.entries_wiped} watchlist entries wiped")
    return 0


def _list(args: argparse.Namespace) -> int:
    db = open_config_db(app_config(args))
    try:
        deps = deployments.list_deployments(db)
    finally:
        db.close()
    lines = [f"{d.id:>4}  {_when(d.started)} .. {_when(d.stopped):<20}  {d.authority}  {d.location}"
             for d in deps] or ["no deployments"]
    emit(args, {"deployments": [d.to_dict() for d in deps]}, "\n".join(lines))
    return 0
