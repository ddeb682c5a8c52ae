"""Helpers every `lfr` command shares: the --config and --json options, and printing results."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from firmware.config import DEFAULT_CONFIG_PATH, AppConfig, load_config
from firmware.errors import ConfigError

NO_CONFIG = (f"no configuration found: give --config FILE, set LFR_CONFIG=FILE, or install {DEFAULT_CONFIG_PATH} "
             "(`lfr demo` prints the LFR_CONFIG line of its own)")
"""The refusal of a command that keeps state when no configuration names where (never a silent default)."""


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """`--config FILE`; default $LFR_CONFIG, else /etc/lfr/appliance.toml when it exists. Also accepted
    before the command (`lfr --config FILE deployment list`); given here it wins."""
    parser.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help=f"TOML configuration (default: $LFR_CONFIG or {DEFAULT_CONFIG_PATH})")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one machine-readable JSON object")


def app_config(args: argparse.Namespace, *, state: bool = True) -> AppConfig:
    """The validated configuration named by --config, $LFR_CONFIG or the installed appliance's file.

    A command that keeps state (`state`: a database, keys, the link) refuses when none is found, rather than
    silently creating a store under /var/lib; commands that only measure or check (`state=False`: eval,
    bench, models, camera and host checks) run on the built-in defaults.
    """
    path = getattr(args, "config", None) or os.environ.get("LFR_CONFIG")
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = str(DEFAULT_CONFIG_PATH)
    if path is None and state:
        raise ConfigError(NO_CONFIG)
    return load_config(Path(path) if path else None)


def emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    """Print `result` as JSON with --json, else the human-readable `text`."""
    if getattr(args, "json", False):
        json.dump(result, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        print(text)
