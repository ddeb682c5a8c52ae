"""Helpers the pipeline tests import (a uniquely named module: `conftest` is ambiguous across test folders)."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from firmware.bench.testbed import add_watchlist, open_deployment
from firmware.embed.recognizer import Recognizer
from firmware.link.messages import Health, Preview


def ready_db(db: sqlite_utils.Database, recognizer: Recognizer, watchlist: list[tuple[str, Path]]) -> int:
    """Open a deployment and enrol `watchlist` (subject id, reference photo) into it; returns its id."""
    dep = open_deployment(db)
    add_watchlist(db, dep, recognizer, watchlist)
    return dep


class LinkStub:
    """Records what the services hand the link."""

    def __init__(self) -> None:
        self.notified = 0
        self.previews: list[Preview] = []
        self.health: Health | None = None

    def notify(self) -> None:
        self.notified += 1

    def publish_preview(self, preview: Preview) -> None:
        self.previews.append(preview)

    def set_health(self, health: Health) -> None:
        self.health = health

    def close(self) -> None:
        pass
