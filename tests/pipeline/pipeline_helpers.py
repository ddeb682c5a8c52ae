"""Helpers the pipeline tests import (a uniquely named module: `conftest` is ambiguous across test folders)."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from firmware.bench.testbed import add_watchlist, open_deployment
from firmware.embed.recognizer import Recognizer


def ready_db(db: sqlite_utils.Database, recognizer: Recognizer, watchlist: list[tuple[str, Path]]) -> int:
    """Open a deployment and enrol `watchlist` (subject id, reference photo) into it; returns its id."""
    dep = open_deployment(db)
    add_watchlist(db, dep, recognizer, watchlist)
    return dep
