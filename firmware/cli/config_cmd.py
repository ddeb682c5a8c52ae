"""`lfr config check|keys`: validate a configuration file, list every key with its documentation."""

from __future__ import annotations

import argparse

from firmware.config import describe, load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="check a configuration file or list its keys")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = csub.add_parser("check", help="validate a TOML configuration file")
    check.add_argument("file", help="path of the TOML file, e.g. /etc/lfr/appliance.toml")
    check.set_defaults(func=_check)
    keys = csub.add_parser("keys", help="list every configuration key, its default and what it does")
    keys.set_defaults(func=_keys)


def _check(args: argparse.Namespace) -> int:
    load_config(args.file)
    print(f"{args.file}: configuration is valid")
    return 0


def _keys(args: argparse.Namespace) -> int:
    for path, doc, default in describe():
        print(f"{path} = {default!r}\n    {doc}")
    return 0
