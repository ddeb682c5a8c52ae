"""docs/viewer.md stays true: every [viewer] key and every decision shortcut the page has is documented."""

from __future__ import annotations

import re
from pathlib import Path

from firmware.config import describe
from firmware.link.messages import OUTCOMES

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "docs" / "viewer.md").read_text()
JS = (REPO / "firmware" / "viewer" / "static" / "viewer.js").read_text()


def test_every_viewer_config_key_is_documented() -> None:
    keys = {path.split(".", 1)[1] for path, _, _ in describe() if path.startswith("viewer.")}
    documented = set(re.findall(r"^\| `([a-z_]+)` \| `[^`]*` \|", DOC, re.MULTILINE))
    assert keys and documented == keys


def test_the_documented_shortcuts_are_the_pages() -> None:
    page = dict(re.findall(r'([a-z]): "([a-z_]+)"', JS.split("const KEYS = {", 1)[1].split("}", 1)[0]))
    documented = {k.lower(): v for k, v in re.findall(r"^  \| `([A-Z])` \| [^|]*\(`([a-z_]+)`\) \|", DOC,
                                                      re.MULTILINE)}
    assert page == documented and sorted(page.values()) == sorted(OUTCOMES)
