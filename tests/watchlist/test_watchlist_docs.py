"""docs/watchlist-bundle.md stays true: every refusal code is documented, and every documented one exists."""

from __future__ import annotations

import re
from pathlib import Path

from firmware.watchlist import errors as E

DOC = Path(__file__).resolve().parents[2] / "docs" / "watchlist-bundle.md"


def test_every_refusal_code_is_documented() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \| `[A-Za-z]+` \|", DOC.read_text(), re.MULTILINE))
    codes = {c.code for c in vars(E).values()
             if isinstance(c, type) and hasattr(c, "code") and c is not E.BundleRefused}
    assert documented == codes


IMPORT_DOC = DOC.parent / "watchlist-import.md"


def test_van_commands_and_audit_actions_are_documented() -> None:
    """docs/watchlist-import.md names every van-side command and every audit action the import writes."""
    from firmware.cli.main import build_parser

    text = IMPORT_DOC.read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices  # type: ignore[union-attr]
    watchlist = next(a for a in sub["watchlist"]._actions if a.dest == "watchlist_command").choices
    for action in ("import", "status", "wipe", "expire"):
        assert action in watchlist and f"lfr watchlist {action}" in text
    bench = next(a for a in sub["bench"]._actions if a.dest == "bench_command").choices
    assert "enrol" in bench and "lfr bench enrol" in text
    code = "".join((DOC.parents[1] / "firmware" / f).read_text() for f in
                   ("watchlist/install.py", "watchlist/swap.py", "store/watchlists.py", "store/deployments.py"))
    for action in set(re.findall(r'action="(watchlist_[a-z_]+)"', code)):
        assert f"| `{action}` |" in text, action
