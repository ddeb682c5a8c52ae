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
