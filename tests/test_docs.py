"""Docs stay true: every `lfr` command is documented, and the configuration page equals the code."""

from __future__ import annotations

import argparse
from pathlib import Path

from firmware.cli.config_cmd import config_markdown
from firmware.cli.main import build_parser

DOCS = Path(__file__).resolve().parent.parent / "docs"


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "lfr") -> list[str]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [prefix]
    out = []
    for name, child in subs[0].choices.items():
        out += leaf_commands(child, f"{prefix} {name}")
    return out


def test_every_command_is_documented() -> None:
    text = (DOCS / "commands.md").read_text()
    missing = [c for c in leaf_commands(build_parser()) if f"`{c}" not in text]
    assert not missing, f"undocumented in docs/commands.md: {missing}"


def test_configuration_page_matches_the_code() -> None:
    assert (DOCS / "configuration.md").read_text() == config_markdown(), \
        "docs/configuration.md is stale: regenerate with `lfr config keys --markdown > docs/configuration.md`"
