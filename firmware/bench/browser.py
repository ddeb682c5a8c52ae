"""Headless Chromium for the viewer's browser test and benchmark: Debian's `chromium` driven by Playwright.

Playwright's own browser download is never used: the system binary is launched with a fresh profile and
every background network feature off, so nothing but the local viewer is contacted.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from firmware.errors import LfrError

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")


class BrowserUnavailable(LfrError, RuntimeError):
    """Playwright or the system Chromium is missing (install the test extras and Debian's chromium)."""


def is_available() -> bool:
    """Playwright is importable and the system Chromium exists."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return CHROMIUM.exists()


@contextmanager
def chromium_page(viewport: tuple[int, int] = (1600, 1000)) -> Iterator[Any]:
    """A Playwright page in headless system Chromium with a throw-away profile; closed on exit."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserUnavailable("playwright is not installed (pip install -e '.[test]')") from exc
    if not CHROMIUM.exists():
        raise BrowserUnavailable(f"{CHROMIUM} is missing (apt-get install chromium; `make deps` does it)")
    profile = tempfile.mkdtemp(prefix="lfr-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS),
                viewport={"width": viewport[0], "height": viewport[1]})
            try:
                yield context.pages[0] if context.pages else context.new_page()
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
