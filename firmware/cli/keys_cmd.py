"""`lfr keys ...`: CURVE link keys and watchlist signing keys; each family registers its own actions."""

from __future__ import annotations

import argparse
import importlib

# Modules with `register(keys_subparsers)`; explicit, like firmware.cli.main.COMMANDS.
ACTIONS: tuple[str, ...] = (
    "firmware.cli.keys_signing",
    "firmware.cli.keys_curve",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="make, pair and show link and signing keys")
    ksub = p.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    for name in ACTIONS:
        importlib.import_module(name).register(ksub)
