"""`lfr purge`: delete alert images and probe crops past the retention period (a systemd timer, daily)."""

from __future__ import annotations

import argparse

from firmware.cli.common import add_config_argument, add_json_argument, app_config, emit
from firmware.cli.deployment_cmd import cli_actor
from firmware.hardware.clock import SystemClock
from firmware.store import retention
from firmware.store.db import open_config_db


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("purge", help="purge alert images older than storage.retention_days (max 30)")
    add_config_argument(p)
    add_json_argument(p)
    p.set_defaults(func=_purge)


def _purge(args: argparse.Namespace) -> int:
    cfg = app_config(args)
    db = open_config_db(cfg)
    try:
        result = retention.purge(db, clock=SystemClock(), actor=cli_actor(),
                                 retention_days=cfg.storage.retention_days)
    finally:
        db.close()
    emit(args, result.to_dict(),
         f"purged images of {result.alerts_purged} alerts and {result.outbox_purged} unsent messages "
         f"older than {result.retention_days} days")
    return 0
