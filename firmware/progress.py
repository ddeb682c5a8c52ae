"""Progress bars on a terminal, silence in the journal or in tests."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap `items` in a tqdm bar when stderr is a terminal; otherwise yield them unchanged."""
    if not sys.stderr.isatty():
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, unit="it", leave=False, dynamic_ncols=True)
