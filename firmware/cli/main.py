"""Entry point of `lfr`: builds the parser from an explicit list of command modules and runs one."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from firmware import __version__
from firmware.errors import LfrError

log = logging.getLogger("lfr")

# Each module defines `register(subparsers)`, adding its sub-commands with `set_defaults(func=...)`.
# The list is explicit (no discovery by import side effect) so the command set is visible in one place.
COMMANDS: tuple[str, ...] = (
    "firmware.cli.config_cmd",
    "firmware.cli.models_cmd",
    "firmware.cli.eval_cmd",
    "firmware.cli.deployment_cmd",
    "firmware.cli.audit_cmd",
    "firmware.cli.purge_cmd",
    "firmware.cli.report_cmd",
    "firmware.cli.keys_cmd",
    "firmware.cli.watchlist_cmd",
    "firmware.cli.camera_cmd",
    "firmware.cli.run_cmd",
    "firmware.cli.bench_cmd",
    "firmware.cli.hardware_cmd",
    "firmware.cli.viewer_cmd",
    "firmware.cli.demo_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    """The full `lfr` parser; tests use it to check that every documented command exists."""
    parser = argparse.ArgumentParser(prog="lfr", description="LFR van appliance")
    parser.add_argument("--version", action="version", version=f"lfr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def configure_logging(verbose: bool) -> None:
    """Log to stderr, which systemd hands to the journal; no timestamps there, the journal adds them."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=fmt, stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `lfr` command; an `LfrError` becomes a one-line message and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        status = args.func(args)
    except LfrError as exc:
        log.debug("command failed", exc_info=True)
        print(f"lfr: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lfr: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
