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

# Each module defines `register(subparsers)`, adding its sub-commands with `set_defaults(func=...)`, and is
# listed with the top-level commands it adds. The list is explicit (no discovery by import side effect) so the
# command set is visible in one place, and a command imports only its own module (see `build_parser`).
COMMANDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("firmware.cli.config_cmd", ("config",)),
    ("firmware.cli.models_cmd", ("models",)),
    ("firmware.cli.eval_cmd", ("eval",)),
    ("firmware.cli.deployment_cmd", ("deployment",)),
    ("firmware.cli.audit_cmd", ("audit",)),
    ("firmware.cli.purge_cmd", ("purge",)),
    ("firmware.cli.report_cmd", ("report",)),
    ("firmware.cli.keys_cmd", ("keys",)),
    ("firmware.cli.watchlist_cmd", ("watchlist",)),
    ("firmware.cli.camera_cmd", ("camera",)),
    ("firmware.cli.run_cmd", ("run",)),
    ("firmware.cli.bench_cmd", ("bench",)),
    ("firmware.cli.hardware_cmd", ("health", "lights")),
    ("firmware.cli.viewer_cmd", ("viewer",)),
    ("firmware.cli.demo_cmd", ("demo",)),
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `lfr` parser: with every command, or with only the module that adds `command`.

    Command modules import OpenCV, LiteRT, ZeroMQ and SQLite helpers; loading all of them cost about 0.6 s
    before any command ran (timers and the operator's commands pay it each time). Tests use the full parser
    to check that every documented command exists.
    """
    parser = argparse.ArgumentParser(prog="lfr", description="LFR van appliance")
    parser.add_argument("--version", action="version", version=f"lfr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="TOML configuration for any command (also accepted after the command)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, commands in COMMANDS:
        if command is None or command in commands:
            importlib.import_module(name).register(sub)
    return parser


def command_named(argv: Sequence[str]) -> str | None:
    """The top-level command `argv` asks for, if it is one of ours (None for `--help`, typos, nothing)."""
    known = {c for _, commands in COMMANDS for c in commands}
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)  # its value is a file name, not the command
        elif not word.startswith("-"):
            return word if word in known else None
    return None


def configure_logging(verbose: bool) -> None:
    """Log to stderr, which systemd hands to the journal; no timestamps there, the journal adds them."""
    fmt = "%(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=fmt, stream=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one `lfr` command; an `LfrError` becomes a one-line message and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(command_named(argv)).parse_args(argv)
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
