"""Helpers every `lfr` command shares: the --config and --json options, and printing results."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from firmware.config import DEFAULT_CONFIG_PATH, AppConfig, load_config


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """`--config FILE`; default $LFR_CONFIG, else /etc/lfr/appliance.toml when it exists, else defaults."""
    parser.add_argument("--config", metavar="FILE", default=None,
                        help=f"TOML configuration (default: $LFR_CONFIG or {DEFAULT_CONFIG_PATH})")


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one machine-readable JSON object")


def app_config(args: argparse.Namespace) -> AppConfig:
    """The validated configuration named by --config, $LFR_CONFIG or the default path."""
    path = getattr(args, "config", None) or os.environ.get("LFR_CONFIG")
    if path is None and DEFAULT_CONFIG_PATH.exists():
        path = str(DEFAULT_CONFIG_PATH)
    return load_config(Path(path) if path else None)


def emit(args: argparse.Namespace, result: dict[str, Any], text: str) -> None:
    """Print `result` as JSON with --json, else the human-readable `text`."""
    if getattr(args, "json", False):
        json.dump(result, sys.stdout, indent=2, sort_keys=True, default=str)
        sys.stdout.write("\n")
    else:
        print(text)
