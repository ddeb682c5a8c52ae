"""`lfr deployment start|stop|list`: open an authorised deployment, close it (wiping its watchlist), list."""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime

import sqlite_utils

from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.hardware.clock import SystemClock
from firmware.store import deployments
from firmware.store.db import open_config_db
from firmware.store.stats import read_stats


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
    stop.add_argument("--force", action="store_true",
                      help="stop even with undecided alerts (they are archived and can no longer be decided)")
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
        result = deployments.stop(db, clock=SystemClock(), actor=cli_actor(), require_decided=not args.force)
    finally:
        db.close()
    dep = result.deployment
    text = f"deployment {dep.id} stopped; {result.entries_wiped} watchlist entries wiped"
    if result.undecided:
        text += f"; warning: undecided alerts archived ({result.undecided}); they can no longer be decided"
    emit(args, {"deployment": dep.to_dict(), "entries_wiped": result.entries_wiped,
                "wal_truncated": result.wal_truncated, "undecided_archived": result.undecided}, text)
    return 0


def _list(args: argparse.Namespace) -> int:
    db = open_config_db(app_config(args))
    try:
        deps = deployments.list_deployments(db)
        counts = {d.id: _counts(db, d.id) for d in deps}
    finally:
        db.close()
    rows = [(str(d.id), _when(d.started), _when(d.stopped), d.authority, str(counts[d.id]["watchlist_size"]),
             str(counts[d.id]["faces_seen"]), str(counts[d.id]["alerts"]), str(counts[d.id]["pending"]),
             d.location) for d in deps]
    header = ("ID", "STARTED", "STOPPED", "AUTHORITY", "WATCHLIST", "FACES", "ALERTS", "PENDING", "LOCATION")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]
    emit(args, {"deployments": [{**d.to_dict(), **counts[d.id]} for d in deps]},
         "\n".join(lines) if deps else "no deployments")
    return 0


def _counts(db: sqlite_utils.Database, deployment_id: int) -> dict[str, int]:
    """The figures `deployment list` shows beside each deployment."""
    stats = read_stats(db, deployment_id)
    alerts, pending = db.execute("SELECT COUNT(*), COALESCE(SUM(state = 'pending'), 0) FROM alerts "
                                 "WHERE deployment_id = ?", [deployment_id]).fetchone()
    live = db.execute("SELECT COUNT(*) FROM watchlist_entries WHERE deployment_id = ?",
                      [deployment_id]).fetchone()[0]
    return {"watchlist_size": max(int(stats["watchlist_size"]), int(live)), "faces_seen": int(stats["faces_seen"]),
            "alerts": int(alerts), "pending": int(pending)}
